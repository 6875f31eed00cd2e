package mux

import (
	"time"

	"github.com/havenproto/haven/wire"
)

// onAck applies an ACK (RFC 9002 §6, §7): newly acknowledged packets leave
// flight and deliver their messages, and each path whose packets it
// covers samples its RTT, grows its congestion controller and detects
// losses (PROTOCOL.md §6.6.4).
func (s *Session) onAck(a *wire.Ack, now time.Time) error {
	largest := a.Ranges[0].Largest
	if largest >= s.nextPN {
		return violation("ACK of a packet never sent")
	}
	n := s.numPaths()
	var per [MaxPaths]ackedOnPath
	for i := 0; i < n; i++ {
		per[i].prior = s.path(i).inFlight
	}
	any := false
	for _, rg := range a.Ranges {
		if rg.Largest < s.sent.base {
			break // ranges descend: the rest is older still
		}
		lo := max(rg.Smallest, s.sent.base)
		for pn := rg.Largest; ; pn-- {
			p := s.sent.get(pn)
			if p != nil && p.state == pktAcked {
				// Acknowledged before: jump over the run it begins, to
				// the next packet that may be new.
				d := s.sent.ackedBelow(pn, lo)
				if pn < lo+d {
					break
				}
				pn -= d - 1
				continue
			}
			if p != nil {
				r, pa := s.path(int(p.path)), &per[p.path]
				if p.state == pktLost {
					s.lateAck(r, pn)
				} else if p.inFlight {
					r.inFlight -= p.size
					pa.acked += p.size
				}
				if p.eliciting && p.state == pktOutstanding {
					r.eliciting--
				}
				p.state = pktAcked
				if pa.newest == nil {
					pa.newest, pa.pn = p, pn
				}
				// For path MTU black-hole detection (pmtu.go).
				_, pm := s.mtuOf(int(p.path))
				pa.large = pa.large || p.size > s.baseMTU
				pa.small = pa.small || pn >= pm.suspPN && p.size <= s.baseMTU
				any = true
				s.framesAcked(p)
			}
			if pn == lo {
				break
			}
		}
	}
	if !any {
		return nil
	}
	s.maxAcked = max(s.maxAcked, largest)
	// The ACK's largest packet, if still tracked: RFC 9002 §5.1 samples
	// the RTT only from it. Its path does so; another path samples from
	// its newest packet the ACK covers, an upper bound (the peer may have
	// held that one longer than the delay it reports).
	var largestPath int = -1
	if p := s.sent.get(largest); p != nil {
		largestPath = int(p.path)
	}
	delay := time.Duration(a.Delay) * time.Microsecond
	for i := 0; i < n; i++ {
		pa := &per[i]
		if pa.newest == nil {
			continue
		}
		r := s.path(i)
		_, pm := s.mtuOf(i)
		pm.waitAck = false
		s.pmtuAckedWhileSuspect(i, pa.large, pa.small)
		if !r.anyAcked || seqBefore(r.largestAcked, pa.newest.seq) {
			r.largestAcked, r.anyAcked = pa.newest.seq, true
		}
		if pa.newest.eliciting && (pa.pn == largest || largestPath >= 0 && largestPath != i) {
			r.rtt.Update(now.Sub(pa.newest.time), delay, true)
		}
		if pa.acked > 0 {
			r.cc.OnAck(now, pa.acked, pa.newest.time, &r.rtt, pa.prior)
		}
		if r.eventLost > 0 && r.eventLate >= r.eventLost {
			r.cc.OnSpuriousCongestion(now)
			r.eventLost, r.eventLate = 0, 0
		}
		r.ptoCount = 0
		r.suspect = false // it delivers again (PROTOCOL.md §6.6.5)
		if s.cfg.Trace != nil {
			s.traceMetrics(i)
		}
	}
	s.detectLosses(now)
	s.retireSent(now)
	return nil
}

// ackedOnPath gathers what one ACK did on one path.
type ackedOnPath struct {
	acked  int         // bytes newly acknowledged
	prior  int         // bytes in flight before
	newest *sentPacket // its largest packet newly acknowledged
	pn     uint64      // newest's packet number
	// large: it covered a packet above the base size; small: one at the
	// base size sent since a black hole was suspected (pmtu.go).
	large, small bool
}

// lateAck counts the acknowledgement of a packet of path r already
// declared lost.
func (s *Session) lateAck(r *recovery, pn uint64) {
	s.stats.SpuriousLosses++
	if pn >= r.eventStart && pn <= r.eventEnd {
		r.eventLate++
	}
}

// lostOnPath gathers one loss detection pass's findings on one path.
type lostOnPath struct {
	delay       time.Duration
	lostBefore  time.Time
	prior       int
	bytes       int
	count       int
	lastLost    time.Time
	first, last uint64 // packet numbers of the first and last lost
}

// detectLosses declares lost the outstanding packets that a packet sent
// later on the same path, now acknowledged, has overtaken by
// packetThreshold packets or by the path's time threshold, and arms each
// path's loss timer for the rest (RFC 9002 §6.1, PROTOCOL.md §6.6.4).
func (s *Session) detectLosses(now time.Time) {
	n := s.numPaths()
	var per [MaxPaths]lostOnPath
	armed := false
	for i := 0; i < n; i++ {
		r := s.path(i)
		r.lossTime = time.Time{}
		if r.anyAcked {
			armed = true
			per[i].delay = r.lossDelay()
			per[i].lostBefore = now.Add(-per[i].delay)
			per[i].prior = r.inFlight
		}
	}
	if !armed {
		return
	}
	for i := 0; i < s.sent.n; i++ {
		pn := s.sent.base + uint64(i)
		if pn >= s.maxAcked {
			break // nothing sent later on any path is acknowledged
		}
		p := s.sent.get(pn)
		if p.state != pktOutstanding {
			// Settled: jump over its run (sentRing.settledAbove).
			i += int(s.sent.settledAbove(pn, s.maxAcked)) - 1
			continue
		}
		r, pl := s.path(int(p.path)), &per[p.path]
		if !r.anyAcked || !seqBefore(p.seq, r.largestAcked) {
			continue
		}
		if r.largestAcked-p.seq < packetThreshold && p.time.After(pl.lostBefore) {
			if t := p.time.Add(pl.delay); r.lossTime.IsZero() || t.Before(r.lossTime) {
				r.lossTime = t
			}
			continue
		}
		if p.inFlight {
			pl.bytes += p.size
		}
		if pl.count == 0 {
			pl.first = pn
		}
		pl.last, pl.lastLost = pn, p.time
		pl.count++
		reason := LossTimeThreshold
		if r.largestAcked-p.seq >= packetThreshold {
			reason = LossPacketThreshold
		}
		s.markLost(r, p, pn, reason)
	}
	for i := 0; i < n; i++ {
		pl := &per[i]
		if pl.count == 0 {
			continue
		}
		r := s.path(i)
		if !r.cc.InRecovery(pl.lastLost) {
			r.eventStart, r.eventEnd, r.eventLost, r.eventLate = pl.first, pl.last, pl.count, 0
		} else if pl.last > r.eventEnd {
			r.eventEnd = pl.last
			r.eventLost += pl.count
		}
		if pl.bytes > 0 {
			r.cc.OnCongestionEvent(now, pl.lastLost, pl.bytes, pl.prior)
		}
	}
}

// retireSent forgets resolved packets at the front of the ring, and
// shrinks the ring when little of it was used over the last epoch (three
// probe timeouts of the slowest path). A lost packet that was in flight is
// kept for a while so a late acknowledgement is recognised as a spurious
// loss; one that was not (a path MTU probe) caused no congestion response
// to undo, and is dropped at once: kept, a probe the path cannot carry
// held the ring's front for three probe timeouts, and the ring grew to
// every packet sent meanwhile (16 MiB at 1 GB/s, for nothing). A packet
// that elicits no acknowledgement (an ACK alone, a CLOSE) carries nothing
// to deliver or retransmit and no bytes in flight, so it is not waited
// for: the peer may never acknowledge it, and it would pin the ring of an
// idle session.
func (s *Session) retireSent(now time.Time) {
	keep := 3 * s.rec.rtt.PTO(s.cfg.MaxAckDelay)
	for i := 1; i < s.numPaths(); i++ {
		if r := s.path(i); r.live {
			keep = max(keep, 3*r.rtt.PTO(s.cfg.MaxAckDelay))
		}
	}
	for s.sent.n > 0 {
		p := s.sent.get(s.sent.base)
		waited := p.eliciting || p.inFlight || p.nf > 0
		if p.state == pktOutstanding && waited || p.state == pktLost && p.inFlight && now.Sub(p.time) < keep {
			break
		}
		s.sent.popFront()
	}
	s.sent.shrink(now, keep)
}

// ptoDeadline is when the next probe timeout fires, on any path (zero:
// none armed).
func (s *Session) ptoDeadline() time.Time {
	var d time.Time
	for i := 0; i < s.numPaths(); i++ {
		if t := s.pathPTO(s.path(i)); !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// pathPTO is when path r's probe timeout fires (zero: not armed).
func (s *Session) pathPTO(r *recovery) time.Time {
	if r.eliciting == 0 || !r.live {
		return time.Time{}
	}
	pto := r.rtt.PTO(s.peerMaxAckDelay(r)) << min(r.ptoCount, 10)
	return r.lastEliciting.Add(pto)
}

// peerMaxAckDelay is how long the peer may hold an ACK back, as path r's
// probe timeout allows for it: twice the delay a Haven receiver applies
// on the path (setAckDelay: a quarter of the smoothed RTT, at least 1 ms),
// at most MaxAckDelay. With the full 25 ms on a short path, every loss at
// the tail of a full window (which no later packet's ACK reveals) left
// the sender idle for 25 ms. Both ends measure the same path, so twice
// the receiver's delay covers the difference between their estimates; an
// estimate off by more costs one early probe, not data.
func (s *Session) peerMaxAckDelay(r *recovery) time.Duration {
	if !r.rtt.HasSample() {
		return s.cfg.MaxAckDelay
	}
	return min(2*max(r.rtt.Smoothed()/4, minAckDelay), s.cfg.MaxAckDelay)
}

// onPTO fires the probe timeouts due by now: on each such path two
// ack-eliciting probes go out, carrying the oldest unacknowledged data of
// the path again if there is any (RFC 9002 §6.2.4). A path with a second
// timeout in a row while another path is usable becomes suspect instead
// (PROTOCOL.md §6.6.5): its data goes to the others at once and its
// probes are PINGs.
func (s *Session) onPTO(now time.Time) {
	for k := 0; k < s.numPaths(); k++ {
		r := s.path(k)
		if t := s.pathPTO(r); t.IsZero() || now.Before(t) {
			continue
		}
		r.ptoCount++
		r.probes = 2
		if s.cfg.Trace != nil {
			s.trace(&TraceEvent{Kind: TraceProbeTimeout, Path: k, Count: r.ptoCount})
		}
		if s.cfg.ReliableCarrier && k == 0 {
			continue // the probes are PINGs: the carrier still holds the data
		}
		if r.ptoCount >= 2 {
			s.pmtuSuspect(k)
		}
		if r.ptoCount >= 2 && s.otherUsable(k) {
			r.suspect = true
			s.abandonPath(k, true)
			r.probes = 2
			continue
		}
		for i := 0; i < s.sent.n; i++ {
			p := s.sent.get(s.sent.base + uint64(i))
			if p.state == pktOutstanding && p.eliciting && int(p.path) == k {
				s.framesLost(p)
				break
			}
		}
	}
}

// framesAcked delivers the messages of an acknowledged packet.
func (s *Session) framesAcked(p *sentPacket) {
	for i := 0; i < int(p.nf); i++ {
		f := s.sent.frame(p, i)
		if f.kind == fPMTUProbe {
			s.pmtuAcked(int(p.path), int(f.n))
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
				// A writer held back by unsentCap rather than by a full
				// buffer is woken by appendStream, once half of its
				// share was sent: waking it for every ACK would only
				// have it find no room.
				if c.send.Free() > before && !c.writeDone && !(c.capBlocked && c.send.UnsentRoom(s.unsentCap(c)) == 0) {
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

// AbandonPath declares every packet outstanding on path id lost and
// queues its messages again, with no congestion response, and restarts
// the path's probe timeout from its base: the owner moved the path
// elsewhere because it went dark or away (a failover, a NAT rebinding;
// PROTOCOL.md §6.6.7), so what is in flight there will not arrive, and the
// new place owes nothing to the old one's timeouts.
func (s *Session) AbandonPath(id int) {
	if id >= 0 && id < s.numPaths() {
		s.abandonPath(id, false)
	}
}

// framesLost queues the messages of a lost packet again. Data and the
// latest control values are resent, never the lost packet itself.
func (s *Session) framesLost(p *sentPacket) {
	for i := 0; i < int(p.nf); i++ {
		f := s.sent.frame(p, i)
		switch f.kind {
		case fPMTUProbe:
			s.pmtuLost(int(p.path), int(f.n))
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
