package mux

import (
	"time"

	"github.com/havenproto/haven/wire"
)

// onAck applies an ACK (RFC 9002 §6, §7): newly acknowledged packets leave
// flight and deliver their messages, the RTT is sampled, the congestion
// controller grows, and losses are detected.
func (s *Session) onAck(a *wire.Ack, now time.Time) error {
	largest := a.Ranges[0].Largest
	if largest >= s.nextPN {
		return violation("ACK of a packet never sent")
	}
	r := &s.rec
	prior := r.inFlight
	acked := 0
	var newest *sentPacket
	var newestPN uint64
	large, small := false, false // for path MTU black-hole detection
	for _, rg := range a.Ranges {
		if rg.Largest < s.sent.base {
			break // ranges descend: the rest is older still
		}
		lo := max(rg.Smallest, s.sent.base)
		for pn := rg.Largest; ; pn-- {
			if p := s.sent.get(pn); p != nil && p.state != pktAcked {
				if p.state == pktLost {
					s.lateAck(pn)
				} else if p.inFlight {
					r.inFlight -= p.size
					acked += p.size
				}
				if p.eliciting && p.state == pktOutstanding {
					r.eliciting--
				}
				p.state = pktAcked
				if newest == nil {
					newest, newestPN = p, pn
				}
				large = large || p.size > s.baseMTU
				small = small || pn >= s.pmtu.suspPN && p.size <= s.baseMTU
				s.framesAcked(p)
			}
			if pn == lo {
				break
			}
		}
	}
	if newest == nil {
		return nil
	}
	s.pmtu.waitAck = false
	s.pmtuAckedWhileSuspect(large, small)
	if !r.anyAcked || largest > r.largestAcked {
		r.largestAcked, r.anyAcked = largest, true
	}
	if newestPN == largest && newest.eliciting {
		delay := time.Duration(a.Delay) * time.Microsecond
		r.rtt.Update(now.Sub(newest.time), delay, true)
	}
	if acked > 0 {
		r.cc.OnAck(now, acked, newest.time, &r.rtt, prior)
	}
	if r.eventLost > 0 && r.eventLate >= r.eventLost {
		r.cc.OnSpuriousCongestion(now)
		r.eventLost, r.eventLate = 0, 0
	}
	r.ptoCount = 0
	s.detectLosses(now)
	s.retireSent(now)
	return nil
}

// lateAck counts the acknowledgement of a packet already declared lost.
func (s *Session) lateAck(pn uint64) {
	s.stats.SpuriousLosses++
	if r := &s.rec; pn >= r.eventStart && pn <= r.eventEnd {
		r.eventLate++
	}
}

// detectLosses declares lost the outstanding packets below the largest
// acknowledged that are packetThreshold older or older than the time
// threshold, and arms the loss timer for the rest (RFC 9002 §6.1).
func (s *Session) detectLosses(now time.Time) {
	r := &s.rec
	r.lossTime = time.Time{}
	if !r.anyAcked {
		return
	}
	delay := r.lossDelay()
	lostBefore := now.Add(-delay)
	prior := r.inFlight
	lostBytes, count := 0, 0
	var lastLost time.Time
	var firstPN, lastPN uint64
	for i := 0; i < s.sent.n; i++ {
		pn := s.sent.base + uint64(i)
		if pn >= r.largestAcked {
			break
		}
		p := s.sent.get(pn)
		if p.state != pktOutstanding {
			continue
		}
		if r.largestAcked-pn < packetThreshold && p.time.After(lostBefore) {
			if t := p.time.Add(delay); r.lossTime.IsZero() || t.Before(r.lossTime) {
				r.lossTime = t
			}
			continue
		}
		p.state = pktLost
		if p.inFlight {
			r.inFlight -= p.size
			lostBytes += p.size
		}
		if p.eliciting {
			r.eliciting--
		}
		if count == 0 {
			firstPN = pn
		}
		lastPN, lastLost = pn, p.time
		count++
		s.stats.PacketsLost++
		s.framesLost(p)
	}
	if count == 0 {
		return
	}
	if !r.cc.InRecovery(lastLost) {
		r.eventStart, r.eventEnd, r.eventLost, r.eventLate = firstPN, lastPN, count, 0
	} else if lastPN > r.eventEnd {
		r.eventEnd = lastPN
		r.eventLost += count
	}
	if lostBytes > 0 {
		r.cc.OnCongestionEvent(now, lastLost, lostBytes, prior)
	}
}

// retireSent forgets resolved packets at the front of the ring, and
// shrinks the ring when little of it was used over the last epoch (three
// probe timeouts). A lost packet is kept
// for a while so a late acknowledgement is recognised as a spurious loss.
// A packet that elicits no acknowledgement (an ACK alone, a CLOSE) carries
// nothing to deliver or retransmit and no bytes in flight, so it is not
// waited for: the peer may never acknowledge it, and it would pin the
// ring of an idle session.
func (s *Session) retireSent(now time.Time) {
	keep := 3 * s.rec.rtt.PTO(s.cfg.MaxAckDelay)
	for s.sent.n > 0 {
		p := s.sent.get(s.sent.base)
		waited := p.eliciting || p.inFlight || p.nf > 0
		if p.state == pktOutstanding && waited || p.state == pktLost && now.Sub(p.time) < keep {
			break
		}
		s.sent.popFront()
	}
	s.sent.shrink(now, keep)
}

// ptoDeadline is when the probe timeout fires (zero: not armed).
func (s *Session) ptoDeadline() time.Time {
	if s.rec.eliciting == 0 {
		return time.Time{}
	}
	pto := s.rec.rtt.PTO(time.Duration(s.peerMaxAckDelay())) << min(s.rec.ptoCount, 10)
	return s.lastEliciting.Add(pto)
}

// peerMaxAckDelay is how long the peer may hold an ACK back, as the probe
// timeout allows for it: twice the delay a Haven receiver applies on this
// path (setAckDelay: a quarter of the smoothed RTT, at least 1 ms), at
// most MaxAckDelay. With the full 25 ms on a short path, every loss at
// the tail of a full window (which no later packet's ACK reveals) left
// the sender idle for 25 ms. Both ends measure the same path, so twice
// the receiver's delay covers the difference between their estimates; an
// estimate off by more costs one early probe, not data.
func (s *Session) peerMaxAckDelay() time.Duration {
	if !s.rec.rtt.HasSample() {
		return s.cfg.MaxAckDelay
	}
	return min(2*max(s.rec.rtt.Smoothed()/4, minAckDelay), s.cfg.MaxAckDelay)
}

// onPTO fires the probe timeout: two ack-eliciting probes go out, carrying
// the oldest unacknowledged data again if there is any (RFC 9002 §6.2.4).
func (s *Session) onPTO() {
	s.rec.ptoCount++
	s.rec.probes = 2
	if s.cfg.ReliableCarrier {
		return // the probes are PINGs: the carrier still holds the data
	}
	if s.rec.ptoCount >= 2 {
		s.pmtuSuspect()
	}
	for i := 0; i < s.sent.n; i++ {
		p := s.sent.get(s.sent.base + uint64(i))
		if p.state == pktOutstanding && p.eliciting {
			s.framesLost(p)
			return
		}
	}
}

// framesAcked delivers the messages of an acknowledged packet.
func (s *Session) framesAcked(p *sentPacket) {
	for i := 0; i < int(p.nf); i++ {
		f := &p.frames[i]
		if f.kind == fPMTUProbe {
			s.pmtuAcked(int(f.n))
			continue
		}
		c := s.channels.Lookup(f.ch)
		if f.ch == 0 || c == nil {
			continue
		}
		switch f.kind {
		case fStream:
			if c.send != nil && !c.resetSent {
				before := c.send.Free()
				c.send.Ack(f.off, int(f.n), f.fin)
				if c.send.Free() > before && !c.writeDone {
					s.emit(c, EventWritable)
				}
			}
		case fOpen:
			c.openSeen = true
			c.pending &^= pendOpen
		case fRefuse, fReset, fCloseCh:
			c.unackedCtl--
		}
		s.maybeRelease(c)
	}
}

// AbandonInFlight declares every outstanding packet lost and queues its
// messages again, with no congestion response, and restarts the probe
// timeout from its base: the owner moved the session off a path that
// went dark or away (a failover, a NAT rebinding; PROTOCOL.md §6.6.7), so
// what is in flight there will not arrive, and the new path owes nothing
// to the old one's timeouts.
func (s *Session) AbandonInFlight() {
	r := &s.rec
	for i := 0; i < s.sent.n; i++ {
		p := s.sent.get(s.sent.base + uint64(i))
		if p.state != pktOutstanding {
			continue
		}
		p.state = pktLost
		if p.inFlight {
			r.inFlight -= p.size
		}
		if p.eliciting {
			r.eliciting--
		}
		s.stats.PacketsLost++
		s.framesLost(p)
	}
	r.lossTime = time.Time{}
	r.ptoCount, r.probes = 0, 0
}

// framesLost queues the messages of a lost packet again. Data and the
// latest control values are resent, never the lost packet itself.
func (s *Session) framesLost(p *sentPacket) {
	for i := 0; i < int(p.nf); i++ {
		f := &p.frames[i]
		switch f.kind {
		case fPMTUProbe:
			s.pmtuLost(int(f.n))
			continue
		case fMaxDataSess:
			s.ctrlMaxData = true
			s.sched.wakeControl()
			continue
		case fMaxChannels:
			s.ctrlMaxChans = true
			s.sched.wakeControl()
			continue
		case fCloseSess:
			s.closeSent = false
			continue
		case fAddress:
			s.addressLost(int(f.n))
			continue
		case fChallenge:
			// A path is validated only by an answer; a lost challenge
			// would leave it unvalidated for good (PROTOCOL.md §6.4).
			if s.pathResult != s.pathChallenge {
				s.ctrlChallenge = true
				s.sched.wakeControl()
			}
			continue
		}
		c := s.channels.Lookup(f.ch)
		if c == nil {
			continue
		}
		switch f.kind {
		case fStream:
			if c.send != nil && !c.resetSent {
				c.send.MarkLost(f.off, int(f.n), f.fin)
			}
		case fOpen:
			if !c.openSeen {
				c.pending |= pendOpen
			}
		case fAccept:
			c.pending |= pendAccept
		case fRefuse:
			c.unackedCtl--
			c.pending |= pendRefuse
		case fReset:
			c.unackedCtl--
			c.pending |= pendReset
		case fCloseCh:
			c.unackedCtl--
			c.pending |= pendClose
		case fMaxDataCh:
			c.pending |= pendMaxData
		}
		s.sched.wake(c)
	}
}
