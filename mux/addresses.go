package mux

import (
	"net/netip"

	"github.com/havenproto/haven/wire"
)

// Address advertisement, the part of the multi-path sub-protocol that is
// built (docs/PROTOCOL.md §6.6.2, §6.6.7): a responder tells the initiator
// the other addresses it accepts packets at, and the initiator's owner
// keeps paths to them as backups.

// MaxAddresses bounds the addresses a session advertises and the peer's
// it keeps (PROTOCOL.md §6.6.1 holds at most 8 paths).
const MaxAddresses = 8

// addresses is a session's advertisement state.
type addresses struct {
	out     []netip.AddrPort // ours, by sequence number - 1 (nil: none)
	pending uint8            // bit i: out[i]'s ADDRESS is to be sent
	// in holds the peer's advertisements (nil until the first).
	in []wire.AdvertiseAddress
}

// Advertise queues an ADDRESS for each of addrs (at most MaxAddresses; the
// rest are ignored), sequence numbers 1, 2, ...; each is sent again when
// lost. Call it once, when the session starts.
func (s *Session) Advertise(addrs []netip.AddrPort) {
	a := &s.addrs
	for _, ap := range addrs[:min(len(addrs), MaxAddresses-len(a.out))] {
		a.pending |= 1 << len(a.out)
		a.out = append(a.out, ap)
	}
	if a.pending != 0 {
		s.sched.wakeControl()
	}
}

// PeerAddresses returns the addresses the peer advertised and has not
// retired, a fresh slice.
func (s *Session) PeerAddresses() []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(s.addrs.in))
	for _, m := range s.addrs.in {
		out = append(out, m.Addr)
	}
	return out
}

// appendAddresses adds the pending ADDRESS messages that fit.
func (s *Session) appendAddresses(p []byte, room int, sp *sentPacket) ([]byte, bool) {
	a := &s.addrs
	added := false
	for i := range a.out {
		m := wire.AdvertiseAddress{Seq: uint32(i + 1), Addr: a.out[i]}
		if a.pending&(1<<i) == 0 || !s.fits(p, room, m.Len()) ||
			!s.sent.record(sp, frameRef{kind: fAddress, n: uint32(i)}) {
			continue
		}
		p = m.Append(wire.AppendAlign(p, s.align))
		a.pending &^= 1 << i
		added = true
	}
	return p, added
}

// addressLost queues advertisement i again.
func (s *Session) addressLost(i int) {
	if i < len(s.addrs.out) {
		s.addrs.pending |= 1 << i
		s.sched.wakeControl()
	}
}

// peerAdvertised records the peer's ADDRESS: a new sequence number is
// added while there is room, a known one replaced.
func (s *Session) peerAdvertised(m wire.AdvertiseAddress) {
	a := &s.addrs
	for i := range a.in {
		if a.in[i].Seq == m.Seq {
			a.in[i] = m
			s.emit(nil, EventAddresses)
			return
		}
	}
	if len(a.in) < MaxAddresses {
		a.in = append(a.in, m)
		s.emit(nil, EventAddresses)
	}
}

// peerRetired drops the peer's advertisement seq.
func (s *Session) peerRetired(seq uint32) {
	a := &s.addrs
	for i := range a.in {
		if a.in[i].Seq == seq {
			a.in = append(a.in[:i], a.in[i+1:]...)
			s.emit(nil, EventAddresses)
			return
		}
	}
}
