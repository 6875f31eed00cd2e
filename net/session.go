package net

import (
	"net"
	"net/netip"
	"time"

	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/mux"
)

// Session is the session a channel belongs to: one authenticated peer.
type Session struct {
	s     *endpoint.Session
	local *Addr
}

// Peer returns the peer's public key, authenticated by the handshake.
func (s *Session) Peer() PublicKey { return s.s.Peer() }

// RemoteAddr returns the peer's current address.
func (s *Session) RemoteAddr() *Addr { return &Addr{Key: s.s.Peer(), Addr: s.s.RemoteAddr()} }

// Stats returns the session's counters.
func (s *Session) Stats() mux.Stats { return s.s.Stats() }

// FECStats returns the session's forward error correction counters:
// repair symbols sent and received, and datagrams recovered from them
// (Config.DatagramFEC).
func (s *Session) FECStats() mux.FECStats { return s.s.FECStats() }

// OpenStream opens a new stream channel to service without waiting for the
// peer (a refusal shows on the first Read or Write).
func (s *Session) OpenStream(service string, priority uint8) (*Conn, error) {
	st, err := s.s.OpenStream(service, priority)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "haven", Source: s.local, Addr: s.RemoteAddr(), Err: mapErr(err)}
	}
	return newConn(st, s.local), nil
}

// Close closes the session, and every channel on it, with an application
// code (≥ 0x10000) or 0, and a reason the peer sees.
func (s *Session) Close(code uint32, reason string) { s.s.Close(code, reason) }

// PathChanges returns how many times the peer moved to a new address (or
// port) and the new path was validated (PROTOCOL.md §6.4).
func (s *Session) PathChanges() int { return s.s.PathChanges() }

// PathInfo describes one of a session's paths (Session.Paths).
type PathInfo struct {
	Local, Remote netip.AddrPort
	Transport     string // "udp" or "tcp"
	// State is "active" (carries data, sharing the load with the other
	// active paths), "backup" (carries data only while no active path
	// works: Dialer.BackupPaths), "suspect" (it stopped delivering: only
	// probes go there until it does again), "validating" (being opened,
	// or the peer's new address being checked), or "standby" (known but
	// not opened yet).
	State string
	// For the paths in use (active, backup, suspect): the smoothed round
	// trip, and what this side sent on the path.
	RTT                    time.Duration
	PacketsSent, BytesSent uint64
	PacketsLost            uint64
}

// Paths returns the session's paths, the one the handshake used first
// (docs/PROTOCOL.md §6.6): with Dialer.LocalAddrs, one from each further
// local socket, and one to each address the server advertises
// (Config.Advertise).
func (s *Session) Paths() []PathInfo {
	var out []PathInfo
	for _, p := range s.s.Paths() {
		tr := "udp"
		if p.Stream {
			tr = "tcp"
		}
		out = append(out, PathInfo{Local: p.Local, Remote: p.Remote, Transport: tr, State: p.State,
			RTT: p.SmoothedRTT, PacketsSent: p.PacketsSent, BytesSent: p.BytesSent, PacketsLost: p.PacketsLost})
	}
	return out
}

// Transport returns what carries the session: "udp", or "tcp" for the
// stream transport of docs/PROTOCOL.md §8 (a "haven+tcp" dial, or a
// "haven" dial that fell back).
func (s *Session) Transport() string {
	if s.s.Stream() {
		return "tcp"
	}
	return "udp"
}

// CarrierCongestion returns the TCP congestion control of the fallback
// connection the session runs on, as the kernel reports it: the one
// Config.Congestion names ("cubic", "bbr") where the kernel granted it,
// the host's default where it refused (docs/PROTOCOL.md §8.1). It is ""
// over UDP, where Haven's own controller (Stats) is the session's.
func (s *Session) CarrierCongestion() string { return s.s.CarrierCongestion() }

// Cipher returns the AEAD the session speaks: the dialing side's
// Config.Cipher (docs/PROTOCOL.md §2.1), never CipherAuto.
func (s *Session) Cipher() Cipher { return cipherOf(s.s.Suite()) }

// Channels returns how many channels the session has open.
func (s *Session) Channels() int { return s.s.Channels() }

// LastHandshake returns when the session's newest keys were made: its
// handshake, or its latest rekey.
func (s *Session) LastHandshake() time.Time { return s.s.LastHandshake() }

// KeyUpdates returns how many times the session's keys were replaced
// (rekeys, docs/PROTOCOL.md §7.6).
func (s *Session) KeyUpdates() int { return int(s.s.KeySets()) - 1 }
