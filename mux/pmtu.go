package mux

import (
	"time"

	"github.com/havenproto/haven/wire"
)

// Path MTU discovery (PROTOCOL.md §6.5; the packetization-layer method of
// RFC 8899, as QUIC applies it in RFC 9000 §14.3). A session starts
// sending packets of the base size, wire.DefaultPacketSize, which fits
// any path with a 1,500-byte MTU under IPv6 or IPv4. Once the peer has
// acknowledged a packet, it probes the larger candidate sizes that both
// sides accept, largest first, one probe at a time: a probe is a PING
// padded to the candidate size. An acknowledged probe raises the packet
// size to it and ends the search; a lost probe moves on to the next
// smaller candidate. Probes do not count toward bytes in flight, and a
// lost probe is no congestion signal (RFC 9000 §14.4): the path simply
// does not carry that size.
//
// Black holes (RFC 8899 §4.3): when the path stops carrying the larger
// size (a route change), full-size packets are lost while nothing else
// arrives either. Two consecutive probe timeouts while above the base
// size make the session suspect one: from then on it sends base-size
// packets only. If an ACK then covers a large packet, the timeouts were
// something else (a late ACK, a congested receiver) and the size stays;
// if it covers only packets sent at the base size since the suspicion,
// the path lost the large ones: the size drops to the base, and the
// search starts again once a later ACK shows the path is up.

// Candidate sizes: a 64 KiB MTU (the loopback interface) and a 9,000-byte
// jumbo frame, each less the IPv6 and UDP headers (48 bytes), so that the
// same size fits IPv4 too. The largest size both sides accept is probed
// first when it lies below the first of these.
const (
	pmtuLoopback = 65536 - 48
	pmtuJumbo    = 9000 - 48
)

// pmtuState is the search's progress.
type pmtuState struct {
	cands   [3]int // sizes to probe, largest first
	nc      int    // how many of cands are in use
	next    int    // index of the next candidate to probe
	probing bool   // a probe is outstanding
	suspect bool   // a black hole is suspected: send base-size packets
	suspPN  uint64 // first packet number sent while suspecting
	waitAck bool   // after a black-hole fallback: search again once an ACK arrives
	size    int    // size of the outstanding probe
}

// initPMTU sets up the search for packets up to max bytes above the
// current size.
func (s *Session) initPMTU(max int) {
	p := &s.pmtu
	*p = pmtuState{}
	top := min(max, pmtuLoopback)
	for _, c := range [...]int{top, pmtuLoopback, pmtuJumbo} {
		if c <= top && c > s.mtu && (p.nc == 0 || c < p.cands[p.nc-1]) {
			p.cands[p.nc] = c
			p.nc++
		}
	}
}

// pmtuAfter is how many bytes a session sends at the base size before it
// probes: a session that exchanges small messages gains nothing from
// larger packets, and a 64 KiB probe costs as much to seal and open as
// 45 full base-size packets.
const pmtuAfter = 64 << 10

// pmtuProbeDue reports whether Poll should send a probe now: the search
// is on, no probe is outstanding, the session has sent pmtuAfter bytes,
// and the peer has acknowledged a packet (so that loss detection can
// judge the probe).
func (s *Session) pmtuProbeDue() bool {
	p := &s.pmtu
	return p.next < p.nc && !p.probing && !p.waitAck && s.rec.anyAcked && s.state == sessOpen &&
		s.stats.BytesSent >= pmtuAfter
}

// probeSize returns the size of the probe Poll would send now, or 0.
func (s *Session) probeSize() int {
	if !s.pmtuProbeDue() {
		return 0
	}
	return s.pmtu.cands[s.pmtu.next]
}

// buildPMTUProbe writes a probe into b (len(b) ≥ its size) and records it.
func (s *Session) buildPMTUProbe(b []byte, now time.Time) int {
	size := s.pmtu.cands[s.pmtu.next]
	h := wire.Header{Destination: s.peer, Source: s.local, PacketNumber: s.nextPN}
	if s.spinOut() {
		h.Flags |= wire.FlagSpin
	}
	p := h.Append(b[:0])
	sp := s.sent.add()
	p = (&wire.Ping{}).Append(wire.AppendAlign(p, s.align))
	n := size - wire.TagLen
	clear(b[len(p):n]) // PADDING to the end (PROTOCOL.md §4.1)
	record(sp, frameRef{kind: fPMTUProbe, n: uint32(size)})
	s.pmtu.probing, s.pmtu.size = true, size
	s.stats.PMTUProbes++
	// Neither eliciting nor in flight for recovery: a probe's fate says
	// nothing about congestion, and it must not hold up the PTO of data.
	s.finishPacket(sp, 0, n, false, now)
	return n
}

// pmtuAcked raises the packet size to an acknowledged probe's.
func (s *Session) pmtuAcked(size int) {
	if !s.pmtu.probing || size != s.pmtu.size {
		return
	}
	s.pmtu.probing, s.pmtu.next = false, s.pmtu.nc // found: the search ends
	if size > s.mtu {
		s.setMTU(size)
	}
}

// pmtuLost moves the search to the next smaller candidate.
func (s *Session) pmtuLost(size int) {
	if !s.pmtu.probing || size != s.pmtu.size {
		return
	}
	s.pmtu.probing = false
	s.pmtu.next++
}

// pmtuSuspect starts suspecting a black hole after repeated probe
// timeouts above the base size.
func (s *Session) pmtuSuspect() {
	if s.mtu <= s.baseMTU || s.pmtu.suspect {
		return
	}
	s.pmtu.suspect, s.pmtu.suspPN = true, s.nextPN
}

// pmtuAckedWhileSuspect settles a suspicion from one ACK: large says
// whether it newly covered a packet larger than the base size, small
// whether it covered one sent at the base size since the suspicion.
func (s *Session) pmtuAckedWhileSuspect(large, small bool) {
	switch {
	case !s.pmtu.suspect:
	case large: // the path still carries the size: no black hole
		s.pmtu.suspect = false
	case small: // only the small ones get through: a black hole
		s.pmtu.suspect = false
		s.stats.PMTUBlackHoles++
		s.setMTU(s.baseMTU)
		s.initPMTU(s.maxMTU)
		s.pmtu.waitAck = true // search again after the next ACK
	}
}

// sendSize returns the largest packet to build now: the base size while a
// black hole is suspected, else the discovered size.
func (s *Session) sendSize() int {
	if s.pmtu.suspect {
		return s.baseMTU
	}
	return s.mtu
}

// setMTU changes the size of the packets sent, and the congestion
// controller's unit with it (its minimum and initial windows are counted
// in packets). The pacer keeps the base size as its unit: it lets a packet
// go once the budget holds a base-size packet and lets a larger one drive
// the budget negative, to be repaid before the next. Counted in 64 KiB
// packets, a small control packet would wait for a whole 64 KiB of budget.
func (s *Session) setMTU(n int) {
	s.mtu = n
	s.rec.cc.SetMaxDatagramSize(n)
	s.rec.pacer.SetRateBurst(n <= s.baseMTU)
	s.stats.PacketSize = n
}
