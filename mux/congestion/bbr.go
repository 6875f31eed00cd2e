package congestion

import "time"

// BBR is a delay-based congestion controller in the manner of BBR
// (Cardwell et al., "BBR: Congestion-Based Congestion Control", 2016, and
// draft-cardwell-iccrg-bbr-congestion-control): it estimates the path's
// bottleneck bandwidth (the maximum delivery rate over the last ten
// rounds) and its minimum RTT (over the last ten seconds), paces at a gain
// times that bandwidth, and keeps about two bandwidth-delay products in
// flight, so that it fills the path without filling its queues, where
// [Cubic] grows until a queue overflows.
//
// What it simplifies, on this package's sans-I/O interface: delivery-rate
// samples are taken from the ACK stream (bytes newly acknowledged over the
// last round trip, measured at each ACK) rather than from per-packet
// delivery state, so a sample is an ack rate; application-limited
// periods are told apart only in Startup: a round in which less than half
// the window was in flight does not count towards the end of Startup
// (otherwise a request/response stream before a bulk transfer ended it at
// its own tiny rate). Losses are not ignored as BBRv1 does: a congestion
// event caps the window at 70 % of the inflight that saw the loss, and the
// cap then grows by one packet, two, four … per round without loss (as
// BBRv2 probes inflight_hi upwards) until the model's own window is below
// it. Alone on a path, BBR rarely loses and the cap is seldom in force;
// beside a loss-based flow that fills the queue, it makes BBR yield as
// that flow does.
//
// The state machine: Startup (pacing gain 2/ln 2, until the bandwidth has
// not grown 25 % in three rounds that were not application-limited),
// Drain (the inverse gain, until inflight is down to one BDP), ProbeBW
// (gains cycling 1.25, 0.75, then six rounds at 0.95, one phase per min
// RTT), and ProbeRTT (every 10 s without a lower RTT: four packets in
// flight for 200 ms, so that the min RTT is measured with the queue empty).
//
// ProbeBW cruises at 0.95 rather than BBRv1's 1: the bandwidth estimate is
// the maximum of noisy samples, a few per cent above the bottleneck where
// a shaper or receiver delivers in bunches, and pacing at it filled the
// queue up to the window (two BDPs) through a rate-capped proxy; at 0.95
// the queue drains (50 Mbit/s, 20 ms, one-BDP queue: a small stream's p99
// 29 ms beside the bulk, against 41 ms with CUBIC or cruising at 1). On a
// path whose min RTT is under bbrShortPath (a LAN, loopback) ProbeBW paces
// at twice the bandwidth and the window rules: there the "bottleneck" is
// usually the hosts' CPUs, and pacing at the rate just achieved held a
// CPU-bound transfer at 0.93 of CUBIC's; the window bounds the queue to
// about a BDP, under a millisecond.
type BBR struct {
	mss   int
	state bbrState
	btlBw maxFilter // bytes per second, over bbrBwRounds rounds
	// burst is the most bytes one ACK covered over the same rounds: a
	// receiver that acknowledges batches (as Haven's does, a socket read
	// at a time) needs that much more in flight to keep the pipe full,
	// which matters where the round trip is short (BBR's extra_acked).
	burst     maxFilter
	minRTT    time.Duration
	minRTTAt  time.Time
	rounds    RoundCounter
	delivered uint64   // bytes acknowledged in all
	sent      uint64   // bytes sent in all
	acks      rateRing // delivered over time
	sends     rateRing // sent over time

	// Startup: the bandwidth at the last check and the rounds since it
	// last grew 25 %.
	fullBw      float64
	fullBwCount int
	filled      bool

	cycleIdx   int
	cycleStart time.Time

	probeRTTDone time.Time // ProbeRTT ends then (zero: not yet at 4 packets)
	prior        bbrState  // the state ProbeRTT returns to

	// inflightHi caps the window after a congestion event, until the next
	// bandwidth probe (0: no cap).
	inflightHi int
	hiGrowth   int       // packets the cap grows by next round: 1, 2, 4 … (BBRv2's probe_up_cnt)
	lossAt     time.Time // the send time of the latest loss acted on
}

type bbrState uint8

const (
	bbrStartup bbrState = iota
	bbrDrain
	bbrProbeBW
	bbrProbeRTT
)

// rateRing records a running byte count over time, a point per event,
// for rates over the last few round trips. It starts at bbrRingMin points
// and doubles, up to bbrRing, while its oldest point is still within what
// the caller keeps (a span of a few min RTTs: from 20 ms at 50 Mbit/s to
// loopback's tens of microseconds at a GB/s), so an idle or slow session
// holds a few hundred bytes, not the 16 KiB a full ring of 512 points
// takes. Times are kept as offsets from the first point's.
type rateRing struct {
	p     []ratePoint // a ring of len(p) slots
	head  int
	n     int
	epoch time.Time
}

type ratePoint struct {
	at    time.Duration // since epoch
	total uint64
}

// add records total at now (replacing the newest point when it has the
// same time). A full ring grows if its oldest point is younger than keep
// (keep ≤ 0: always, up to bbrRing); otherwise the oldest point goes.
func (r *rateRing) add(now time.Time, total uint64, keep time.Duration) {
	if r.p == nil {
		r.p, r.epoch = make([]ratePoint, bbrRingMin), now
	}
	at := now.Sub(r.epoch)
	if r.n > 0 {
		if last := &r.p[(r.head+r.n-1)%len(r.p)]; at <= last.at {
			last.total = total
			return
		}
	}
	if r.n == len(r.p) {
		if len(r.p) < bbrRing && (keep <= 0 || at-r.p[r.head].at < keep) {
			np := make([]ratePoint, 2*len(r.p))
			for i := 0; i < r.n; i++ {
				np[i] = r.p[(r.head+i)%len(r.p)]
			}
			r.p, r.head = np, 0
		} else {
			r.head = (r.head + 1) % len(r.p)
			r.n--
		}
	}
	r.p[(r.head+r.n)%len(r.p)] = ratePoint{at, total}
	r.n++
}

// before returns the time and count of the newest point at or before t,
// or of the oldest point; ok is false for an empty ring. The points are
// in time order, so it bisects.
func (r *rateRing) before(t time.Time) (at time.Time, total uint64, ok bool) {
	if r.n == 0 {
		return time.Time{}, 0, false
	}
	want := t.Sub(r.epoch)
	lo, hi := 0, r.n // the answer is the last index whose point is ≤ want
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.p[(r.head+mid)%len(r.p)].at <= want {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	p := r.p[(r.head+max(lo-1, 0))%len(r.p)]
	return r.epoch.Add(p.at), p.total, true
}

const (
	bbrRing          = 512
	bbrRingMin       = 16
	bbrBwRounds      = 10
	bbrMinRTTWindow  = 10 * time.Second
	bbrProbeRTTTime  = 200 * time.Millisecond
	bbrHighGain      = 2.885 // 2/ln 2: doubles the delivery rate each round
	bbrCwndGain      = 2.0
	bbrProbeRTTCwnd  = 4 // packets
	bbrMinCwndPacket = 4
	bbrShortPath     = time.Millisecond
)

// bbrCycle is ProbeBW's pacing gains, one phase per min RTT: probe up,
// drain, then cruise a little below the estimate (see BBR's comment).
var bbrCycle = [...]float64{1.25, 0.75, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95}

// NewBBR returns a BBR controller for packets of maxDatagramSize bytes.
func NewBBR(maxDatagramSize int) *BBR {
	b := &BBR{mss: maxDatagramSize}
	b.btlBw.window, b.burst.window = bbrBwRounds, bbrBwRounds
	return b
}

// OnPacketSent implements [Controller].
func (b *BBR) OnPacketSent(now time.Time, bytes, bytesInFlight int) {
	b.rounds.OnPacketSent(now)
	b.sent += uint64(bytes)
	b.sends.add(now, b.sent, b.ringKeep(3))
}

// OnAck implements [Controller]: it takes a bandwidth sample, advances the
// rounds and the state machine.
func (b *BBR) OnAck(now time.Time, acked int, largestSentTime time.Time, rtt *RTTStats, priorInFlight int) {
	b.delivered += uint64(acked)
	newRound := b.rounds.OnAck(largestSentTime)
	if r := rtt.Latest(); r > 0 && (b.minRTT == 0 || r <= b.minRTT || now.Sub(b.minRTTAt) > bbrMinRTTWindow) {
		if b.state != bbrProbeRTT || r <= b.minRTT || b.minRTT == 0 {
			b.minRTT, b.minRTTAt = r, now
		}
	}
	if bw, ok := b.sample(now, largestSentTime); ok {
		b.btlBw.update(bw, b.rounds.Rounds())
	}
	b.acks.add(now, b.delivered, b.ringKeep(2))
	b.burst.update(float64(acked), b.rounds.Rounds())
	inflight := priorInFlight - acked
	if newRound && b.inflightHi > 0 && largestSentTime.After(b.lossAt) {
		// A round without loss: the cap grows, by a packet, then two,
		// four … in the following rounds (as BBRv2 probes inflight_hi
		// upwards), and goes once the model's own window is below it. A
		// cap growing by a packet per round, as Reno's window does, kept
		// BBR at a crawl after the losses of its startup: 2 to 4 MB/s in
		// five seconds on a 6.25 MB/s path.
		b.hiGrowth = min(max(b.hiGrowth*2, 1), 64)
		b.inflightHi += b.hiGrowth * b.mss
		if b.inflightHi >= b.modelWindow() {
			b.inflightHi = 0
		}
	}
	switch b.state {
	case bbrStartup:
		// A round in which the sender had too little to send to fill even
		// half its window says nothing about the path (BBR's app-limited
		// samples): an idle request/response stream before a bulk
		// transfer otherwise ended Startup at its own tiny rate, and the
		// bulk then crept up at ProbeBW's pace (74 % of a 6.25 MB/s path
		// in its first five seconds).
		if newRound && priorInFlight >= b.Window()/2 {
			b.checkFull()
		}
		if b.filled {
			b.state = bbrDrain
		}
	case bbrDrain:
		if inflight <= b.bdp(1) {
			b.enterProbeBW(now)
		}
	case bbrProbeBW:
		b.advanceCycle(now, inflight)
	case bbrProbeRTT:
		if b.probeRTTDone.IsZero() && inflight <= bbrProbeRTTCwnd*b.mss {
			b.probeRTTDone = now.Add(bbrProbeRTTTime)
		}
		if !b.probeRTTDone.IsZero() && !now.Before(b.probeRTTDone) {
			b.minRTTAt = now
			if b.filled {
				b.enterProbeBW(now)
			} else {
				b.state = bbrStartup
			}
		}
	}
	if b.state != bbrProbeRTT && b.minRTT > 0 && now.Sub(b.minRTTAt) > bbrMinRTTWindow {
		b.prior, b.state, b.probeRTTDone = b.state, bbrProbeRTT, time.Time{}
	}
}

// sample returns a delivery-rate sample: the ack rate over about the
// last min RTT, but no more than the rate at which the packets it covers
// were sent (a receiver or network that bunches ACKs would otherwise make
// the ack rate exceed what the path carries).
func (b *BBR) sample(now, largestSentTime time.Time) (float64, bool) {
	span := max(2*b.minRTT, 10*time.Microsecond)
	fromAt, fromTotal, ok := b.acks.before(now.Add(-span))
	if !ok {
		return 0, false
	}
	d := now.Sub(fromAt)
	if d < span/2 || b.delivered <= fromTotal {
		return 0, false
	}
	rate := float64(b.delivered-fromTotal) / d.Seconds()
	endAt, endTotal, ok1 := b.sends.before(largestSentTime)
	startAt, startTotal, ok2 := b.sends.before(largestSentTime.Add(-d))
	if ok1 && ok2 && endAt.After(startAt) && endTotal > startTotal {
		rate = min(rate, float64(endTotal-startTotal)/endAt.Sub(startAt).Seconds())
	}
	return rate, true
}

// ringKeep is how far back the rate rings must reach: k sample spans of
// two min RTTs (the send ring also covers the round trip between a
// packet's send and its ACK); 0, grow freely, before the first RTT sample.
func (b *BBR) ringKeep(k int) time.Duration {
	return time.Duration(2*k) * b.minRTT
}

// checkFull notes, once per round in Startup, whether the bandwidth still
// grows: three rounds without 25 % growth fill the pipe.
func (b *BBR) checkFull() {
	bw := b.btlBw.get()
	if bw >= b.fullBw*1.25 {
		b.fullBw, b.fullBwCount = bw, 0
		return
	}
	b.fullBwCount++
	if b.fullBwCount >= 3 {
		b.filled = true
	}
}

func (b *BBR) enterProbeBW(now time.Time) {
	b.state, b.cycleIdx, b.cycleStart = bbrProbeBW, 2, now // start in a cruising phase
}

// advanceCycle moves ProbeBW to its next gain phase after a min RTT (the
// 1.25 phase also waits until inflight reached 1.25 BDP, or a loss; the
// 0.75 phase ends early once inflight is down to a BDP).
func (b *BBR) advanceCycle(now time.Time, inflight int) {
	elapsed := now.Sub(b.cycleStart) > b.minRTT
	gain := bbrCycle[b.cycleIdx]
	switch {
	case gain > 1:
		elapsed = elapsed && (inflight >= b.bdp(gain) || b.inflightHi > 0)
	case gain < 1:
		elapsed = elapsed || inflight <= b.bdp(1)
	}
	if !elapsed {
		return
	}
	b.cycleIdx = (b.cycleIdx + 1) % len(bbrCycle)
	b.cycleStart = now
}

// bdp returns gain × the estimated bandwidth-delay product in bytes.
func (b *BBR) bdp(gain float64) int {
	bw := b.btlBw.get()
	if bw == 0 || b.minRTT == 0 {
		return InitialWindow(b.mss)
	}
	return int(gain * bw * b.minRTT.Seconds())
}

// OnCongestionEvent implements [Controller]: once per round trip of
// losses, the window is capped at 70 % of the inflight that saw them
// (see the type's comment); in Startup a loss ends the startup.
func (b *BBR) OnCongestionEvent(now, sentTime time.Time, lostBytes, priorInFlight int) {
	if !sentTime.After(b.lossAt) {
		return // the same round of losses
	}
	b.lossAt = now
	b.inflightHi = max(priorInFlight*7/10, bbrMinCwndPacket*b.mss)
	b.hiGrowth = 0
	if b.state == bbrStartup {
		b.filled = true
		b.state = bbrDrain
	}
}

// OnSpuriousCongestion implements [Controller]: the cap goes.
func (b *BBR) OnSpuriousCongestion(now time.Time) { b.inflightHi = 0 }

// OnPersistentCongestion implements [Controller]: back to the minimum
// window until the bandwidth is measured again.
func (b *BBR) OnPersistentCongestion(now time.Time) {
	b.inflightHi = bbrMinCwndPacket * b.mss
}

// Window implements [Controller]: cwnd_gain × BDP (the whole high gain in
// Startup) plus twice the largest ACK burst, at least four packets, under the loss cap, and four packets
// in ProbeRTT.
func (b *BBR) Window() int {
	if b.state == bbrProbeRTT {
		return bbrProbeRTTCwnd * b.mss
	}
	w := b.modelWindow()
	if b.inflightHi > 0 {
		w = min(w, b.inflightHi)
	}
	return w
}

// modelWindow is the window of the bandwidth and RTT model alone.
func (b *BBR) modelWindow() int {
	if b.btlBw.get() == 0 {
		return InitialWindow(b.mss)
	}
	gain := bbrCwndGain
	if b.state == bbrStartup {
		gain = bbrHighGain
	}
	return max(b.bdp(gain)+2*int(b.burst.get()), bbrMinCwndPacket*b.mss)
}

// CanSend implements [Controller].
func (b *BBR) CanSend(bytesInFlight int) bool { return bytesInFlight < b.Window() }

// PacingRate implements [Controller]: the state's gain × the bottleneck
// bandwidth (twice it in ProbeBW on a short path, see the type's comment);
// before the first sample, the initial window over the RTT.
func (b *BBR) PacingRate(rtt *RTTStats) float64 {
	bw := b.btlBw.get()
	if bw == 0 {
		return PacingRate(InitialWindow(b.mss), rtt.Smoothed(), bbrHighGain)
	}
	switch b.state {
	case bbrStartup:
		return bbrHighGain * bw
	case bbrDrain:
		return bw / bbrHighGain
	case bbrProbeBW:
		if b.minRTT < bbrShortPath {
			return 2 * bw
		}
		return bbrCycle[b.cycleIdx] * bw
	}
	return bw
}

// InSlowStart implements [Controller]: Startup.
func (b *BBR) InSlowStart() bool { return b.state == bbrStartup }

// InRecovery implements [Controller]: packets sent before the latest loss
// acted on belong to its round.
func (b *BBR) InRecovery(sentTime time.Time) bool { return !sentTime.After(b.lossAt) }

// SetMaxDatagramSize implements [Controller].
func (b *BBR) SetMaxDatagramSize(n int) { b.mss = n }

// maxFilter keeps the maximum of the samples of the last window rounds
// (a windowed max filter of three entries, as BBR's Kathleen Nichols
// filter: best, second and third best of successive sub-windows).
type maxFilter struct {
	window uint64
	s      [3]struct {
		v     float64
		round uint64
	}
}

func (f *maxFilter) get() float64 { return f.s[0].v }

func (f *maxFilter) update(v float64, round uint64) {
	if v >= f.s[0].v || round-f.s[2].round > f.window {
		for i := range f.s {
			f.s[i].v, f.s[i].round = v, round
		}
		return
	}
	if v >= f.s[1].v {
		f.s[1].v, f.s[1].round = v, round
		f.s[2] = f.s[1]
	} else if v >= f.s[2].v {
		f.s[2].v, f.s[2].round = v, round
	}
	if round-f.s[0].round > f.window {
		f.s[0], f.s[1] = f.s[1], f.s[2]
		f.s[2].v, f.s[2].round = v, round
		if round-f.s[0].round > f.window {
			f.s[0], f.s[1] = f.s[1], f.s[2]
		}
	} else if f.s[1].v == f.s[0].v && round-f.s[1].round > f.window/4 {
		f.s[1].v, f.s[1].round = v, round
		f.s[2] = f.s[1]
	} else if f.s[2].v == f.s[1].v && round-f.s[2].round > f.window/2 {
		f.s[2].v, f.s[2].round = v, round
	}
}
