package net

import (
	"time"

	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/mux"
)

// Config holds what a Dialer or ListenConfig may tune. The zero value is
// ready to use: a fresh identity and safe defaults.
type Config struct {
	// PrivateKey is the static identity; zero makes a fresh one per
	// Dialer or listener.
	PrivateKey PrivateKey
	// HandshakeTimeout bounds a dial's handshake (default 10 s).
	HandshakeTimeout time.Duration
	// HandshakeRetransmit is the wait before the first retransmission of
	// an initiation (default 1 s); each further wait doubles, up to eight
	// times this. Shorten it on known lossy, low-latency paths.
	HandshakeRetransmit time.Duration
	// IdleTimeout closes a session after so long without a packet
	// (default 30 s); KeepAlive pings after so long without one (default a
	// third of IdleTimeout).
	IdleTimeout, KeepAlive time.Duration
	// MaxChannels is how many channels a peer may have open at once on a
	// session (default 1,024).
	MaxChannels int
	// StreamWindow and MaxStreamWindow bound each stream's receive window
	// (defaults 256 KiB, auto-tuned up to 16 MiB); SendBuffer bounds each
	// stream's unacknowledged data (default 1 MiB).
	StreamWindow, MaxStreamWindow, SendBuffer int
	// SessionWindow and MaxSessionWindow bound a session's receive window
	// (defaults 1 MiB, auto-tuned up to 64 MiB).
	SessionWindow, MaxSessionWindow int
	// MaxPacketSize is the largest packet accepted, and the ceiling of
	// path MTU discovery (default 65,507, the largest UDP payload).
	// Sessions start with 1,452-byte packets, which fit a 1,500-byte MTU,
	// and probe for larger ones: 65,488 bytes on loopback, 8,952 on a
	// 9,000-byte jumbo-frame network (docs/PROTOCOL.md §6.5). 1,452 turns
	// discovery off.
	MaxPacketSize int
	// MaxSessions bounds the sessions of one socket (default 10,000).
	MaxSessions int
	// Backlog bounds the channels waiting for Accept (default 128).
	Backlog int
}

func (c *Config) endpoint(accept bool) endpoint.Config {
	if c == nil {
		c = &Config{}
	}
	return endpoint.Config{
		PrivateKey: c.PrivateKey,
		Accept:     accept,
		Session: mux.Config{
			MaxPacketSize:    c.MaxPacketSize,
			MaxChannels:      c.MaxChannels,
			ChannelWindow:    c.StreamWindow,
			MaxChannelWindow: c.MaxStreamWindow,
			SessionWindow:    c.SessionWindow,
			MaxSessionWindow: c.MaxSessionWindow,
			SendBuffer:       c.SendBuffer,
			IdleTimeout:      c.IdleTimeout,
			KeepAlive:        c.KeepAlive,
		},
		Handshake: secure.HandshakeConfig{
			Timeout:        c.HandshakeTimeout,
			RetransmitBase: c.HandshakeRetransmit,
			RetransmitMax:  8 * c.HandshakeRetransmit,
		},
		MaxSessions: c.MaxSessions,
		Backlog:     c.Backlog,
	}
}
