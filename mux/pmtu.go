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
// same size fits IPv4 too; and a 1,500-byte Ethernet MTU less the IPv4 and
// UDP headers (28 bytes), which only IPv4 paths carry (on IPv6 the probe is
// lost, which costs nothing but the probe). The largest size both sides
// accept is probed first when it lies below the first of these.
const (
	pmtuLoopback = 65536 - 48
	pmtuJumbo    = 9000 - 48
	pmtuEthernet = 1500 - 28
)

// pmtuState is the search's progress.
type pmtuState struct {
	cands   [4]int32 // sizes to probe, largest first (int32 keeps mux.Session small)
	nc      int      // how many of cands are in use
	next    int      // index of the next candidate to probe
	probing bool     // a probe is outstanding
	suspect bool     // a black hole is suspected: send base-size packets
	suspPN  uint64   // first packet number sent while suspecting
	waitAck bool     // after a black-hole fallback: search again once an ACK arrives
	size    int      // size of the outstanding probe
}

// mtuOf returns path k's packet size and search: path 0's are the
// session's own (s.mtu, s.pmtu), a further path's are in its extraPath.
func (s *Session) mtuOf(k int) (*int, *pmtuState) {
	if k == 0 {
		return &s.mtu, &s.pmtu
	}
	e := s.extra[k-1]
	return &e.mtu, &e.pmtu
}

// initPMTU sets up path k's search for packets up to max bytes above its
// current size.
func (s *Session) initPMTU(k, max int) {
	mtu, p := s.mtuOf(k)
	*p = pmtuState{}
	top := min(max, pmtuLoopback)
	for _, c := range [...]int{top, pmtuLoopback, pmtuJumbo, pmtuEthernet} {
		if c <= top && c > *mtu && (p.nc == 0 || c < int(p.cands[p.nc-1])) {
			p.cands[p.nc] = int32(c)
			p.nc++
		}
	}
}

// pmtuAfter is how many bytes a path carries at the base size before it
// is probed: a session that exchanges small messages gains nothing from
// larger packets, and a 64 KiB probe costs as much to seal and open as
// 45 full base-size packets.
const pmtuAfter = 64 << 10

// pmtuProbeDue reports whether Poll should send a probe on path k now:
// its search is on, no probe of it is outstanding, it has carried
// pmtuAfter bytes, and the peer has acknowledged a packet sent on it (so
// that loss detection can judge the probe).
func (s *Session) pmtuProbeDue(k int) bool {
	_, p := s.mtuOf(k)
	r := s.path(k)
	return p.next < p.nc && !p.probing && !p.waitAck && r.anyAcked && r.live && !r.suspect &&
		s.state == sessOpen && r.sentBytes >= pmtuAfter
}

// probeDue returns a path due for a probe and the probe's size (0: none).
func (s *Session) probeDue() (int, int) {
	for k := 0; k < s.numPaths(); k++ {
		if s.pmtuProbeDue(k) {
			_, p := s.mtuOf(k)
			return k, int(p.cands[p.next])
		}
	}
	return 0, 0
}

// buildPMTUProbe writes a probe for path k into b (len(b) ≥ its size) and
// records it.
func (s *Session) buildPMTUProbe(b []byte, now time.Time, k int) int {
	_, pm := s.mtuOf(k)
	size := int(pm.cands[pm.next])
	h := wire.Header{Destination: s.peer, Source: s.local, PacketNumber: s.nextPN}
	if s.spinOut() {
		h.Flags |= wire.FlagSpin
	}
	p := h.Append(b[:0])
	sp := s.sent.add()
	p = (&wire.Ping{}).Append(wire.AppendAlign(p, s.align))
	n := size - wire.TagLen
	clear(b[len(p):n]) // PADDING to the end (PROTOCOL.md §4.1)
	s.sent.record(sp, frameRef{kind: fPMTUProbe, n: uint32(size)})
	pm.probing, pm.size = true, size
	s.stats.PMTUProbes++
	// Neither eliciting nor in flight for recovery: a probe's fate says
	// nothing about congestion, and it must not hold up the PTO of data.
	s.finishPacket(sp, k, n, false, now, 0, 0)
	return n
}

// pmtuAcked raises path k's packet size to an acknowledged probe's.
func (s *Session) pmtuAcked(k, size int) {
	mtu, p := s.mtuOf(k)
	if !p.probing || size != p.size {
		return
	}
	p.probing, p.next = false, p.nc // found: the search ends
	if size > *mtu {
		s.setMTU(k, size)
	}
}

// pmtuLost moves path k's search to the next smaller candidate.
func (s *Session) pmtuLost(k, size int) {
	_, p := s.mtuOf(k)
	if !p.probing || size != p.size {
		return
	}
	p.probing = false
	p.next++
}

// pmtuSuspect starts suspecting a black hole on path k after repeated
// probe timeouts above the base size.
func (s *Session) pmtuSuspect(k int) {
	mtu, p := s.mtuOf(k)
	if *mtu <= s.baseMTU || p.suspect {
		return
	}
	p.suspect, p.suspPN = true, s.nextPN
}

// pmtuAckedWhileSuspect settles a suspicion on path k from one ACK: large
// says whether it newly covered a packet of the path larger than the base
// size, small whether it covered one sent at the base size since the
// suspicion.
func (s *Session) pmtuAckedWhileSuspect(k int, large, small bool) {
	_, p := s.mtuOf(k)
	switch {
	case !p.suspect:
	case large: // the path still carries the size: no black hole
		p.suspect = false
	case small: // only the small ones get through: a black hole
		p.suspect = false
		s.stats.PMTUBlackHoles++
		s.setMTU(k, s.baseMTU)
		s.initPMTU(k, s.maxMTU)
		p.waitAck = true // search again after the next ACK
	}
}

// sendSizeOn returns the largest packet to build for path k now: the
// base size while a black hole is suspected there, else the discovered
// size.
func (s *Session) sendSizeOn(k int) int {
	mtu, p := s.mtuOf(k)
	if p.suspect {
		return s.baseMTU
	}
	return *mtu
}

// setMTU changes the size of the packets sent on path k, and its
// congestion controller's unit with it (its minimum and initial windows
// are counted in packets). The pacer keeps the base size as its unit: it
// lets a packet go once the budget holds a base-size packet and lets a
// larger one drive the budget negative, to be repaid before the next.
// Counted in 64 KiB packets, a small control packet would wait for a
// whole 64 KiB of budget. The rate part of the pacer's allowance stays on
// up to the jumbo size and is off above it (Pacer.SetRateBurst says why).
func (s *Session) setMTU(k, n int) {
	mtu, _ := s.mtuOf(k)
	*mtu = n
	r := s.path(k)
	r.cc.SetMaxDatagramSize(n)
	r.pacer.SetRateBurst(n <= pmtuJumbo)
	if k == 0 {
		s.stats.PacketSize = n
	}
}
