package mux

import (
	"time"

	"github.com/havenproto/haven/mux/internal/buf"
	"github.com/havenproto/haven/wire"
)

// maxAckRanges bounds the received-packet ranges a session remembers and
// reports; older ranges are forgotten first (their packets were acked).
// A session with several paths remembers up to maxAckRangesMulti: the
// packets in flight on a slower path are holes among the faster one's
// (PROTOCOL.md §6.6.3), and a packet below every range remembered is
// ignored as a possible duplicate.
const (
	maxAckRanges      = 32
	maxAckRangesMulti = 512
)

// ackState tracks received packet numbers and decides when to acknowledge
// (RFC 9000 §13.2): at once for out-of-order arrivals, after AckEvery
// ack-eliciting packets, and otherwise after a delay that follows the
// path's round trip, never later than MaxAckDelay (Session.setAckDelay).
type ackState struct {
	recvd     buf.RangeSet // received packet numbers, half-open ranges
	largest   uint64
	largestAt time.Time
	any       bool
	unacked   bool // something arrived since the last ACK we sent
	eliciting int  // ack-eliciting packets since the last ACK we sent
	data      bool // one of them carried more than a PING (Session.Poll)
	immediate bool
	deadline  time.Time // an ACK is due by then (zero: none due)
	every     int
	multi     bool          // several paths: reordering is no loss signal
	maxDelay  time.Duration // Config.MaxAckDelay, what the peer's PTO allows for
	delay     time.Duration // the delay in force (Session.setAckDelay)
	msg       wire.Ack
}

// init prepares the state with the session's storage for the first
// received ranges and the first ranges of the ACKs built (sessionStore).
func (a *ackState) init(cfg Config, first *buf.InlineRanges, ranges []wire.AckRange) {
	a.recvd.InitInline(maxAckRanges, first)
	a.every = cfg.AckEvery
	a.maxDelay, a.delay = cfg.MaxAckDelay, cfg.MaxAckDelay
	// msg.Ranges grows from ranges with what build reports (at most
	// maxAckRanges) and keeps that room.
	a.msg.Ranges = ranges
}

// seen reports whether packet pn was already received (a duplicate).
func (a *ackState) seen(pn uint64) bool { return a.recvd.Contains(pn) }

// tooOld reports whether pn is below every range remembered: it may be a
// duplicate we can no longer recognise, so it is ignored.
func (a *ackState) tooOld(pn uint64) bool {
	lo, _ := a.recvd.Min()
	return a.recvd.Len() == maxAckRanges && pn < lo
}

// record notes a processed packet.
func (a *ackState) record(pn uint64, eliciting bool, now time.Time) {
	if !a.recvd.Add(pn, pn+1) {
		// Too many gaps: forget the oldest range, then record.
		_, end := a.recvd.At(0)
		a.recvd.RemoveBelow(end)
		a.recvd.Add(pn, pn+1)
	}
	outOfOrder := a.any && (pn < a.largest || pn > a.largest+1)
	if !a.any || pn > a.largest {
		a.largest, a.largestAt, a.any = pn, now, true
	}
	a.unacked = true
	if !eliciting {
		return
	}
	a.eliciting++
	if outOfOrder && !a.multi || a.eliciting >= a.every {
		a.immediate = true
	}
	if a.deadline.IsZero() {
		a.deadline = now.Add(a.delay)
	}
}

// due reports whether an ACK must be sent now.
func (a *ackState) due(now time.Time) bool {
	return a.immediate || !a.deadline.IsZero() && !now.Before(a.deadline)
}

// timer returns when an ACK falls due (zero: none).
func (a *ackState) timer() time.Time {
	if a.immediate {
		return time.Time{}
	}
	return a.deadline
}

// multipath prepares the state for packets arriving by several paths:
// more ranges, and no immediate ACK for packets out of order, which a
// faster path makes the rule (the sender detects losses per path).
func (a *ackState) multipath() {
	a.multi = true
	a.recvd.Grow(maxAckRangesMulti)
}

// build fills and returns the ACK message for the ranges received, at
// most maxRanges of them, the newest (an ACK may leave out old ranges,
// PROTOCOL.md §5.1).
func (a *ackState) build(now time.Time, maxRanges int) *wire.Ack {
	a.msg.Ranges = a.msg.Ranges[:0]
	for i := a.recvd.Len() - 1; i >= 0 && len(a.msg.Ranges) < maxRanges; i-- {
		start, end := a.recvd.At(i)
		a.msg.Ranges = append(a.msg.Ranges, wire.AckRange{Smallest: start, Largest: end - 1})
	}
	d := now.Sub(a.largestAt) / time.Microsecond
	a.msg.Delay = uint32(min(max(d, 0), 1<<32-1))
	return &a.msg
}

// sent notes that an ACK went out.
func (a *ackState) sent() {
	a.unacked, a.eliciting, a.immediate, a.data = false, 0, false, false
	a.deadline = time.Time{}
}

// minAckDelay is the shortest delay before acknowledging a lone
// ack-eliciting packet (setAckDelay).
const minAckDelay = time.Millisecond

// setAckDelay sets how long a lone ack-eliciting packet waits for its
// ACK: a quarter of the smoothed RTT, between minAckDelay and MaxAckDelay.
// A sender whose window is full, or whose last packet carried the end of
// a burst, waits for that ACK; at the full 25 ms of MaxAckDelay on a short
// path it sat idle for a hundred round trips (bulk at 2 % loss, MTU
// 1,500: 22 MB/s, most of it in such waits). The peer's probe timeout
// still allows for the full MaxAckDelay, so acknowledging sooner is
// always safe (RFC 9000 §13.2.1 lets a receiver acknowledge at any time).
func (s *Session) setAckDelay() {
	d := s.acks.maxDelay
	if s.rec.rtt.HasSample() {
		d = min(max(s.rec.rtt.Smoothed()/4, minAckDelay), s.acks.maxDelay)
	}
	s.acks.delay = d
}
