package congestion

import (
	"math"
	"time"
)

// RoundCounter delimits round trips using only send times and ACKs, for
// algorithms that act once per round (HyStart++ here, and BBR-style
// controllers later).
//
// RFC 9406 §4.2 marks a round with windowEnd = SND.NXT: the round ends when
// the first packet sent after the round began is acknowledged. Without
// packet numbers, the counter remembers the send time of that packet (the
// first OnPacketSent after the previous round ended) and ends the round when
// an ACK's largest newly acknowledged packet was sent at or after it. Send
// times are the engine's non-decreasing `now`, so "sent at or after the
// marker" is "sent after the round began", except for packets sent in the
// very instant the round began but before the ACK that began it was
// processed; such a packet can end a round a few packets early, which is
// harmless for per-round statistics.
//
// While nothing is sent, no round ends: the marker is armed by the next send.
// The zero value is ready: the first packet sent starts the first round.
type RoundCounter struct {
	marker    time.Time // send time of the first packet of the current round
	markerSet bool      // a packet of the current round has been sent
	rounds    uint64
}

// OnPacketSent records a send at now. Call it for every in-flight packet.
func (r *RoundCounter) OnPacketSent(now time.Time) {
	if !r.markerSet {
		r.marker = now
		r.markerSet = true
	}
}

// OnAck processes an ACK whose largest newly acknowledged packet was sent
// at largestAckedSentTime, and reports whether it ended the current round
// (in which case the next packet sent starts a new one).
func (r *RoundCounter) OnAck(largestAckedSentTime time.Time) bool {
	if !r.markerSet || largestAckedSentTime.Before(r.marker) {
		return false
	}
	r.markerSet = false
	r.rounds++
	return true
}

// Rounds returns the number of rounds completed.
func (r *RoundCounter) Rounds() uint64 { return r.rounds }

// HyStart++ constants, RFC 9406 §4.3.
const (
	hsNRTTSample       = 8                     // N_RTT_SAMPLE: samples per round before deciding
	hsMinRTTThresh     = 4 * time.Millisecond  // MIN_RTT_THRESH
	hsMaxRTTThresh     = 16 * time.Millisecond // MAX_RTT_THRESH
	hsMinRTTDivisor    = 8                     // MIN_RTT_DIVISOR
	hsCSSGrowthDivisor = 4                     // CSS_GROWTH_DIVISOR
	hsCSSRounds        = 5                     // CSS_ROUNDS
	hsUnpacedL         = 8                     // L for a sender that does not pace
)

// rttInfinite stands for "no sample yet" in the round minima.
const rttInfinite = time.Duration(math.MaxInt64)

// hyStart phases.
const (
	hsSlowStart uint8 = iota // standard slow start, watching for a delay increase
	hsCSS                    // Conservative Slow Start
	hsDone                   // HyStart++ is finished (or disabled): plain slow start
)

// hyStart is HyStart++ (RFC 9406): slow start that watches the minimum RTT
// of each round and, when it rises by more than a threshold, leaves
// exponential growth for Conservative Slow Start (CSS), where the window
// grows four times slower. If the RTT falls back below the level that
// triggered CSS, the exit was a false alarm caused by jitter and slow start
// resumes; after CSS_ROUNDS rounds of CSS the controller moves to congestion
// avoidance with ssthresh set to the window.
//
// Per §4.3 it is used only for the connection's first slow start: a
// congestion event ends it for good (later slow starts, after persistent
// congestion, stop at the ssthresh the losses taught).
//
// hyStart keeps the algorithm's state and decides transitions; the owner
// feeds it one call per ACK, with the round boundary from a [RoundCounter],
// and applies the window increase it returns. It is a plain value so that
// the owner can snapshot and restore it (spurious-loss undo).
type hyStart struct {
	phase uint8
	// limitPackets is L: one ACK grows the window by at most L ×
	// max_datagram_size (§4.2); 0 means unlimited (L = infinity, for a
	// paced sender).
	limitPackets int

	lastRoundMinRTT    time.Duration
	currentRoundMinRTT time.Duration
	rttSampleCount     int
	cssBaselineMinRTT  time.Duration
	cssRounds          int // CSS rounds begun, the partial first one included
}

// newHyStart returns HyStart++ ready for the first slow start. A paced
// sender may take the whole ACK into the window (L = infinity); an unpaced
// one is limited to 8 packets per ACK (§4.3) to bound bursts.
func newHyStart(enabled, paced bool) hyStart {
	h := hyStart{
		phase:              hsSlowStart,
		lastRoundMinRTT:    rttInfinite,
		currentRoundMinRTT: rttInfinite,
		cssBaselineMinRTT:  rttInfinite,
	}
	if !paced {
		h.limitPackets = hsUnpacedL
	}
	if !enabled {
		h.phase = hsDone
	}
	return h
}

// active reports whether HyStart++ still governs slow start.
func (h *hyStart) active() bool { return h.phase != hsDone }

// inCSS reports whether slow start is in its conservative phase.
func (h *hyStart) inCSS() bool { return h.phase == hsCSS }

// finish ends HyStart++: on a congestion event (§4.2: loss or ECN-CE in
// slow start or CSS hands over to the loss response) or when the owner
// leaves slow start for good.
func (h *hyStart) finish() { h.phase = hsDone }

// onAck processes one ACK in slow start. ackedBytes is the newly
// acknowledged in-flight data, rtt this ACK's RTT sample (non-positive
// means none), roundEnded whether the ACK closed a round, and mds the
// maximum datagram size. It returns the window increase, and whether CSS is
// over, in which case the owner sets ssthresh to the window and moves to
// congestion avoidance (§4.2). When HyStart++ is not active the increase is
// plain slow start: every acknowledged byte.
func (h *hyStart) onAck(ackedBytes int, rtt time.Duration, roundEnded bool, mds int) (increase float64, exit bool) {
	if h.phase == hsDone {
		return float64(ackedBytes), false
	}
	if roundEnded {
		// §4.2: at the start of each round, the current round's minimum
		// becomes the last round's, and sampling starts over.
		h.lastRoundMinRTT = h.currentRoundMinRTT
		h.currentRoundMinRTT = rttInfinite
		h.rttSampleCount = 0
		if h.phase == hsCSS {
			if h.cssRounds >= hsCSSRounds {
				// §4.2: CSS_ROUNDS rounds of CSS without the RTT falling
				// back: enter congestion avoidance.
				h.phase = hsDone
				return 0, true
			}
			h.cssRounds++
		}
	}
	if rtt > 0 {
		h.currentRoundMinRTT = min(h.currentRoundMinRTT, rtt)
		h.rttSampleCount++
	}
	if h.rttSampleCount >= hsNRTTSample && h.currentRoundMinRTT != rttInfinite {
		switch h.phase {
		case hsSlowStart:
			if h.lastRoundMinRTT != rttInfinite {
				// §4.2: RttThresh = clamp(lastRoundMinRTT / MIN_RTT_DIVISOR,
				// MIN_RTT_THRESH, MAX_RTT_THRESH).
				thresh := min(max(h.lastRoundMinRTT/hsMinRTTDivisor, hsMinRTTThresh), hsMaxRTTThresh)
				if h.currentRoundMinRTT >= h.lastRoundMinRTT+thresh {
					h.cssBaselineMinRTT = h.currentRoundMinRTT
					h.phase = hsCSS
					// A round in which CSS begins part-way counts toward
					// CSS_ROUNDS (§4.2).
					h.cssRounds = 1
				}
			}
		case hsCSS:
			if h.currentRoundMinRTT < h.cssBaselineMinRTT {
				// §4.2: the delay increase was spurious (jitter); resume
				// slow start, HyStart++ included.
				h.cssBaselineMinRTT = rttInfinite
				h.phase = hsSlowStart
			}
		}
	}
	n := ackedBytes
	if h.limitPackets > 0 {
		n = min(n, h.limitPackets*mds)
	}
	increase = float64(n)
	if h.phase == hsCSS {
		increase /= hsCSSGrowthDivisor
	}
	return increase, false
}
