// Package mux is Haven's session engine: a sans-I/O state machine for one
// session between two peers. Decrypted packets and the current time go in;
// packets to send and the next timer deadline come out. Nothing here opens
// a socket, reads the clock or starts a goroutine: the layer above owns one
// goroutine per session that calls Receive, Poll and Deadline, and seals and
// sends what Poll produces (docs/ARCHITECTURE.md).
//
// A session carries channels (docs/PROTOCOL.md §5.7): reliable byte streams
// with half-close and datagram channels with fragmentation, each opened by
// either side, scheduled by strict priority and round-robin within a level,
// flow-controlled per channel and per session, with loss recovery after
// RFC 9002 and congestion control from package mux/congestion.
//
// A Session is not safe for concurrent use: its owner serialises calls.
package mux

import (
	"errors"
	"time"

	"github.com/havenproto/haven/mux/congestion"
	"github.com/havenproto/haven/wire"
)

// Config holds a session's local limits and tunables. The zero value of a
// field selects its default (see DefaultConfig).
type Config struct {
	// MaxPacketSize is the largest packet this side accepts and sends,
	// header and tag included (default wire.MaxPacketSize). Sessions
	// start at wire.DefaultPacketSize and path MTU discovery (pmtu.go)
	// may raise the size up to the smaller of both sides' values.
	MaxPacketSize int
	// Align is the message body alignment this side proposes (1..16).
	Align int
	// MaxChannels is how many channels the peer may have open at once;
	// the cumulative MAX_CHANNELS credit grows as they close.
	MaxChannels int
	// ChannelWindow and MaxChannelWindow bound a stream channel's receive
	// window: it starts at the first and auto-tunes up to the second.
	ChannelWindow    int
	MaxChannelWindow int
	// SessionWindow and MaxSessionWindow do the same for the session.
	SessionWindow    int
	MaxSessionWindow int
	// SendBuffer bounds each stream channel's unacknowledged send data.
	SendBuffer int
	// DatagramQueue bounds the bytes of datagrams waiting to be sent, per
	// channel; DatagramReassembly bounds partial incoming datagrams per
	// session and DatagramTimeout how long one may wait for its fragments.
	DatagramQueue      int
	DatagramReassembly int
	DatagramTimeout    time.Duration
	// DatagramWindow is how many bytes of received datagrams the owner may
	// hold unread per channel, like a UDP socket's receive buffer: it sizes
	// the datagram credit granted to the peer (PROTOCOL.md §5.10). It
	// defaults to DatagramQueue, the engine's own receive queue, for an
	// owner that reads with RecvDatagram; an owner that moves datagrams to
	// a larger buffer of its own (TakeDatagram) sets that buffer's size.
	DatagramWindow int
	// IdleTimeout closes the session after so long without an
	// authenticated packet; KeepAlive sends a PING after so long without
	// sending anything ack-eliciting (default: a third of IdleTimeout).
	IdleTimeout time.Duration
	KeepAlive   time.Duration
	// ReliableCarrier says the packets travel over a carrier that
	// delivers each of them, in order, or breaks: the TCP fallback
	// (docs/PROTOCOL.md §8.1). A probe timeout then sends probes (PINGs)
	// without resending data, which the carrier still holds and will
	// deliver, and never suspects a path MTU black hole. Loss detection
	// by ACKs is unchanged; on such a carrier it finds nothing.
	ReliableCarrier bool
	// FEC proposes FEC scheme 1 at the handshake (PROTOCOL.md §5.11): the
	// dialing side's proposal, which a responder accepts. With it in force
	// a side may protect its datagram channels (SetDatagramFEC), and
	// receives repairs on any.
	FEC bool
	// Trace, if set, is called with every engine event as it happens
	// (trace.go): packets sent, received and lost, probe timeouts,
	// recovery metrics, paths, channels. It runs in the session's turn and
	// must be quick; nil costs nothing.
	Trace func(*TraceEvent)
	// MaxAckDelay bounds how long an acknowledgement may be held back;
	// AckEvery sends one at least every so many ack-eliciting packets.
	MaxAckDelay time.Duration
	AckEvery    int
	// NewController makes the congestion controller (default CUBIC with
	// HyStart++).
	NewController func(maxDatagramSize int) congestion.Controller
	// MaxEvents bounds the queue of events waiting for PollEvent.
	MaxEvents int
}

// DefaultConfig returns the defaults every zero field takes.
func DefaultConfig() Config {
	return Config{
		MaxPacketSize:      wire.MaxPacketSize,
		Align:              8,
		MaxChannels:        1024,
		ChannelWindow:      256 << 10,
		MaxChannelWindow:   16 << 20,
		SessionWindow:      1 << 20,
		MaxSessionWindow:   64 << 20,
		SendBuffer:         1 << 20,
		DatagramQueue:      256 << 10,
		DatagramReassembly: 1 << 20,
		DatagramTimeout:    3 * time.Second,
		IdleTimeout:        30 * time.Second,
		MaxAckDelay:        25 * time.Millisecond,
		AckEvery:           2,
		MaxEvents:          4096,
	}
}

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("mux: invalid config")

// withDefaults fills zero fields and checks ranges.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.MaxPacketSize, d.MaxPacketSize)
	setInt(&c.Align, d.Align)
	setInt(&c.MaxChannels, d.MaxChannels)
	setInt(&c.ChannelWindow, d.ChannelWindow)
	setInt(&c.MaxChannelWindow, max(d.MaxChannelWindow, c.ChannelWindow))
	setInt(&c.SessionWindow, d.SessionWindow)
	setInt(&c.MaxSessionWindow, max(d.MaxSessionWindow, c.SessionWindow))
	setInt(&c.SendBuffer, d.SendBuffer)
	setInt(&c.DatagramQueue, d.DatagramQueue)
	setInt(&c.DatagramReassembly, d.DatagramReassembly)
	setInt(&c.DatagramWindow, c.DatagramQueue)
	setInt(&c.AckEvery, d.AckEvery)
	setInt(&c.MaxEvents, d.MaxEvents)
	if c.DatagramTimeout == 0 {
		c.DatagramTimeout = d.DatagramTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = c.IdleTimeout / 3
	}
	if c.MaxAckDelay == 0 {
		c.MaxAckDelay = d.MaxAckDelay
	}
	switch {
	case c.MaxPacketSize < wire.MinPacketSize || c.MaxPacketSize > wire.MaxPacketSize,
		c.Align < 1 || c.Align > 16 || c.Align&(c.Align-1) != 0,
		c.MaxChannels < 1,
		c.ChannelWindow < 1 || c.MaxChannelWindow > wire.MaxStreamWindow || c.ChannelWindow > c.MaxChannelWindow,
		c.SessionWindow < 1 || c.SessionWindow > c.MaxSessionWindow,
		c.SendBuffer < 1, c.DatagramQueue < 1, c.DatagramWindow < 1, c.DatagramReassembly < wire.MaxDatagramSize,
		c.AckEvery < 1, c.MaxEvents < 16,
		c.IdleTimeout < 0, c.KeepAlive < 0, c.MaxAckDelay < 0:
		return c, ErrConfig
	}
	return c, nil
}

// fecScheme is the FEC scheme a Config proposes (Config.FEC).
func fecScheme(on bool) uint8 {
	if on {
		return wire.FECParity
	}
	return wire.FECNone
}

// Params returns the session parameters this configuration announces in
// the handshake (docs/PROTOCOL.md §7.3).
func (c Config) Params() wire.SessionParams {
	c, _ = c.withDefaults()
	lg := uint8(0)
	for 1<<lg < c.Align {
		lg++
	}
	return wire.SessionParams{
		MaxPacketSize: uint16(c.MaxPacketSize),
		AlignLog2:     lg,
		FEC:           fecScheme(c.FEC),
		MaxChannels:   uint32(c.MaxChannels),
		ChannelWindow: uint32(c.ChannelWindow),
		IdleTimeoutMs: uint32(c.IdleTimeout / time.Millisecond),
		SessionWindow: uint64(c.SessionWindow),
	}
}
