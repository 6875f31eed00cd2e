package net

import (
	"io"
	"net/netip"
	"time"

	"github.com/havenproto/haven/compat"
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
	// HandshakeTimeout bounds a dial's handshake (default 60 s). The
	// initiation is sent again after 1 s, then every 2 s (each ±⅓),
	// so on a lossy path a dial keeps trying until this limit, its
	// context or Dialer.Timeout ends it, whichever comes first
	// (docs/PROTOCOL.md §7.6 explains the choice).
	HandshakeTimeout time.Duration
	// HandshakeRetransmit is the wait before the first retransmission of
	// an initiation (default 1 s, the first retransmission timeout of TCP
	// and QUIC: RFC 6298, RFC 9002 §6.2.2); each further wait doubles, up
	// to twice this. Shorten it only on paths known to be short: a
	// response completes the handshake only if it arrives before the
	// second initiation after its own is sent.
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
	// stream's unacknowledged data (default 1 MiB; 4 MiB on the TCP fallback).
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
	// Authorize decides which peers may have a session; nil admits every
	// key. A listener asks it about each initiator's public key once the
	// handshake initiation has authenticated (the peer proved it holds
	// the private key), before any state is kept or any reply is sent. A
	// refused peer gets silence, the same as from a closed port or an
	// unknown protocol, so a scanner cannot tell an unlisted key from no
	// server; its Dial times out. The exception: a sender that knows the
	// server's public key, while the server is under load or that
	// sender's address is over its handshake rate (which it can bring
	// about itself), is sent a cookie reply, because cookies are sent
	// before authentication is possible; its next initiation, with the
	// cookie, gets silence. So such a sender can learn that the server is
	// there, though never get a session (docs/PROTOCOL.md §7.7). A sender
	// that does not know the server's public key always gets silence.
	//
	// A dialer asks it about the server's key before it sends anything
	// (and before reusing a session): a refused server fails the Dial with
	// an *AuthorizeError. Both sides ask again at every rekey (about every
	// two minutes), so a session whose peer is no longer admitted ends
	// within three minutes; Host.CloseSessions ends such sessions at once.
	// Authorize may be called from several goroutines at once and should
	// be fast: it runs on the socket's reader.
	Authorize func(peer PublicKey) bool
	// DisableTCP turns off the TCP fallback (docs/PROTOCOL.md §8). By
	// default a listener on "haven" also accepts the same sessions over
	// TCP at its UDP port's number, and a dial on "haven" whose UDP
	// handshake has not completed within 300 ms tries TCP at that port as
	// well, for networks that block UDP. "haven+tcp" is TCP only either way.
	DisableTCP bool
	// Advertise lists other addresses a listener accepts packets at
	// (another interface, IPv6 beside IPv4, a second uplink): each session
	// a client makes tells the client of them (PROTOCOL.md §6.6.2), and
	// the client keeps paths to them as backups it fails over to (§6.6.7).
	// A listener bound to one address learns of no others by itself.
	Advertise []netip.AddrPort
	// Cipher is the AEAD of the sessions this side starts: CipherAuto (the
	// default: AES-256-GCM on CPUs with AES instructions, ChaCha20-Poly1305
	// elsewhere), CipherChaCha20Poly1305 or CipherAES256GCM. Listeners
	// serve both on one port whatever it says; Session.Cipher reports a
	// session's.
	Cipher Cipher
	// DatagramFEC protects the datagrams this side sends (PacketConn,
	// Session.OpenDatagram, the datagram services of a Host) with forward
	// error correction (docs/PROTOCOL.md §5.11): Repairs repair symbols
	// per group of up to Group consecutive datagrams, from which the peer
	// recovers up to Repairs lost datagrams of the group without a
	// retransmission. {Group: 8, Repairs: 1} is XOR parity at 12.5 % more
	// bytes; {Group: 64, Repairs: 8} costs the same and rides out bursts
	// of losses, at the price of recovering later. Repairs 0 (the
	// default) turns it off. A dialer with it proposes FEC at the
	// handshake, and a listener accepts; a session with FEC receives
	// repairs whatever its own setting.
	DatagramFEC FEC
	// Trace, if set, gives each new session a writer for a trace of its
	// engine's events, JSON lines close to qlog (docs/TRACE.md): packets
	// sent, received and lost, probe timeouts, congestion window and RTT,
	// paths, channels, key updates. A nil writer traces nothing; an
	// io.Closer is closed when the session ends. Without it, the
	// HAVEN_TRACE environment variable (TraceEnv) names a directory for
	// one file per session.
	Trace func(TraceInfo) io.Writer
	// KeyLog, if set, is given the transport keys of every session, as
	// lines of text (docs/KEYLOG.md), so that a capture of its packets can
	// be decrypted (contrib/wireshark); like crypto/tls's KeyLogWriter.
	// Whoever holds the log can read and forge the sessions' packets: use
	// it only to debug. Without it, the HAVEN_KEYLOGFILE environment
	// variable (KeyLogEnv) names a file the keys are appended to. Off by
	// default.
	KeyLog io.Writer
	// Congestion is the congestion controller of this side's sessions:
	// CongestionCUBIC (the default) or CongestionBBR. Each side controls
	// what it sends; the two need not agree. The TCP fallback's
	// connections ask the kernel for the same algorithm ("cubic", "bbr";
	// Linux), and keep the host's default where it refuses
	// (docs/PROTOCOL.md §8.1).
	Congestion Congestion
}

// FEC configures forward error correction on datagram channels
// (Config.DatagramFEC): Group is 1 … 64, Repairs 0 … 16.
type FEC struct{ Group, Repairs int }

// streamConfig configures the TCP fallback's transports of a listener.
func (c *Config) streamConfig() compat.StreamConfig {
	return compat.StreamConfig{MaxPacket: c.MaxPacketSize, Congestion: c.Congestion.tcpName()}
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
			NewController:    c.Congestion.newController(),
		},
		StreamCongestion: c.Congestion.tcpName(),
		Handshake: secure.HandshakeConfig{
			Timeout:        c.HandshakeTimeout,
			RetransmitBase: c.HandshakeRetransmit,
			RetransmitMax:  2 * c.HandshakeRetransmit,
			Suite:          c.Cipher.suite(),
		},
		MaxSessions: c.MaxSessions,
		Backlog:     c.Backlog,
		Authorize:   c.Authorize,
		Advertise:   c.Advertise,
		DatagramFEC: endpoint.FEC(c.DatagramFEC),
		Trace:       c.traceFactory(),
		Limits:      secure.Limits{KeyLog: c.keyLog()},
	}
}
