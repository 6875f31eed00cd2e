package congestion

import (
	"math"
	"testing"
	"time"
)

func TestRoundCounter(t *testing.T) {
	var r RoundCounter
	if r.OnAck(t0) {
		t.Fatal("a round ended before anything was sent")
	}
	// Round 1: packets sent at 0 and 1 ms.
	r.OnPacketSent(t0)
	r.OnPacketSent(t0.Add(ms))
	if r.OnAck(t0.Add(-ms)) {
		t.Fatal("ACK of a packet sent before the round ended it")
	}
	if !r.OnAck(t0) || r.Rounds() != 1 {
		t.Fatal("ACK of the round's first packet did not end it")
	}
	// The packet sent at 1 ms belongs to the finished round; round 2 has
	// not started because nothing was sent since.
	if r.OnAck(t0.Add(ms)) {
		t.Fatal("a round ended with no packet sent in it")
	}
	r.OnPacketSent(t0.Add(100 * ms)) // round 2 starts
	r.OnPacketSent(t0.Add(101 * ms))
	if r.OnAck(t0.Add(ms)) {
		t.Fatal("late ACK of a round-1 packet ended round 2")
	}
	if !r.OnAck(t0.Add(101*ms)) || r.Rounds() != 2 {
		t.Fatal("ACK of a later packet of round 2 did not end it")
	}
}

// pipe is a path with no bottleneck whose RTT depends on the send time of
// each packet. The sender always fills the window and every packet is
// acknowledged on its own, in order.
type pipe struct {
	c        *Cubic
	rtt      RTTStats
	rttAt    func(sent time.Time) time.Duration
	sent     []time.Time // unacknowledged send times, oldest first
	inflight int
	now      time.Time
}

func newPipe(c *Cubic, rttAt func(time.Time) time.Duration) *pipe {
	p := &pipe{c: c, rttAt: rttAt, now: t0}
	p.fill()
	return p
}

func (p *pipe) fill() {
	for p.c.CanSend(p.inflight) {
		p.inflight += mds
		p.c.OnPacketSent(p.now, mds, p.inflight)
		p.sent = append(p.sent, p.now)
	}
}

// ack delivers the next ACK.
func (p *pipe) ack() {
	sent := p.sent[0]
	p.sent = p.sent[1:]
	p.now = maxTime(p.now, sent.Add(p.rttAt(sent)))
	p.rtt.Update(p.now.Sub(sent), 0, true)
	p.c.OnAck(p.now, mds, sent, &p.rtt, p.inflight)
	p.inflight -= mds
	p.fill()
}

// until delivers ACKs while cond holds, failing after limit ACKs.
func (p *pipe) until(t *testing.T, limit int, cond func() bool) {
	t.Helper()
	for i := 0; cond(); i++ {
		if i == limit {
			t.Fatalf("condition still true after %d ACKs (window %d packets)", limit, p.c.Window()/mds)
		}
		p.ack()
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func constRTT(d time.Duration) func(time.Time) time.Duration {
	return func(time.Time) time.Duration { return d }
}

func TestHyStartConstantRTTKeepsDoubling(t *testing.T) {
	const rtt = 100 * ms
	p := newPipe(newTestCubic(CubicConfig{}), constRTT(rtt))
	// Round k's packets leave at k×RTT and are acknowledged at (k+1)×RTT;
	// every ACK adds a packet, so the window doubles each round.
	for round := 1; round <= 8; round++ {
		end := t0.Add(time.Duration(round) * rtt)
		p.until(t, 1<<20, func() bool { return !p.sent[0].Add(rtt).After(end) })
		if want := 10 << round; p.c.Window() != want*mds {
			t.Fatalf("after round %d: window %d packets, want %d", round, p.c.Window()/mds, want)
		}
		if !p.c.InSlowStart() || p.c.InConservativeSlowStart() {
			t.Fatalf("left slow start at a constant RTT (round %d)", round)
		}
	}
}

func TestHyStartDelayIncreaseThenCSSThenAvoidance(t *testing.T) {
	const base = 100 * ms
	// From the fifth round on, queueing adds 20 ms: more than the threshold
	// clamp(100/8, 4, 16) = 12.5 ms.
	rise := t0.Add(4 * base)
	p := newPipe(newTestCubic(CubicConfig{}), func(sent time.Time) time.Duration {
		if sent.Before(rise) {
			return base
		}
		return base + 20*ms
	})
	p.until(t, 100000, func() bool { return !p.c.InConservativeSlowStart() })
	if p.now.Before(rise.Add(base)) {
		t.Fatalf("CSS began at %v, before any delayed packet was acknowledged", p.now.Sub(t0))
	}
	entryRound := p.c.rounds.Rounds()
	entryWindow := p.c.Window()

	// In CSS each ACK adds a quarter of the acknowledged bytes.
	w := p.c.s.cwnd
	p.ack()
	if p.c.InConservativeSlowStart() {
		if got := p.c.s.cwnd - w; got != mds/4 {
			t.Fatalf("CSS growth per packet %v bytes, want %v", got, mds/4)
		}
	}
	p.until(t, 100000, func() bool { return p.c.InSlowStart() })
	if got := p.c.rounds.Rounds() - entryRound; got != hsCSSRounds {
		t.Fatalf("CSS lasted %d rounds, want %d", got, hsCSSRounds)
	}
	if p.c.SlowStartThreshold() != p.c.Window() {
		t.Fatalf("ssthresh %d, want the window %d at CSS exit", p.c.SlowStartThreshold(), p.c.Window())
	}
	// CSS grows by 1.25× per round, so 5 rounds (the first partial) give
	// well under the 32× of slow start.
	if ratio := float64(p.c.Window()) / float64(entryWindow); ratio < 2 || ratio > 3.5 {
		t.Fatalf("window grew %.2f× during CSS", ratio)
	}
	// Congestion avoidance from here; HyStart++ is over.
	p.ack()
	if p.c.InSlowStart() || p.c.s.hystart.active() || !p.c.s.epochStarted {
		t.Fatal("not in congestion avoidance after CSS")
	}
}

func TestHyStartRTTFallsBackResumesSlowStart(t *testing.T) {
	const base = 100 * ms
	rise, fall := t0.Add(4*base), t0.Add(7*base)
	p := newPipe(newTestCubic(CubicConfig{}), func(sent time.Time) time.Duration {
		if sent.Before(rise) || !sent.Before(fall) {
			return base
		}
		return base + 20*ms
	})
	p.until(t, 100000, func() bool { return !p.c.InConservativeSlowStart() })
	p.until(t, 100000, func() bool { return p.c.InConservativeSlowStart() })
	if !p.c.InSlowStart() || !p.c.s.hystart.active() {
		t.Fatal("CSS ended by leaving slow start, not by resuming it")
	}
	if p.c.SlowStartThreshold() != math.MaxInt {
		t.Fatal("ssthresh set on resuming slow start")
	}
	// Full slow start again: one packet per packet acknowledged.
	w := p.c.Window()
	p.ack()
	if p.c.Window() != w+mds {
		t.Fatalf("growth %d bytes per packet after resuming slow start", p.c.Window()-w)
	}
}

func TestHyStartThresholdClamp(t *testing.T) {
	for _, tc := range []struct {
		last, cur time.Duration
		css       bool
	}{
		{10 * ms, 13 * ms, false},   // threshold clamps up to 4 ms
		{10 * ms, 14 * ms, true},    //
		{80 * ms, 89 * ms, false},   // 80/8 = 10 ms
		{80 * ms, 90 * ms, true},    //
		{400 * ms, 415 * ms, false}, // clamps down to 16 ms
		{400 * ms, 416 * ms, true},  //
	} {
		h := newHyStart(true, true)
		for range hsNRTTSample {
			h.onAck(mds, tc.last, false, mds)
		}
		h.onAck(mds, tc.cur, true, mds) // new round
		for range hsNRTTSample - 1 {
			h.onAck(mds, tc.cur, false, mds)
		}
		if h.inCSS() != tc.css {
			t.Errorf("last %v current %v: CSS %v, want %v", tc.last, tc.cur, h.inCSS(), tc.css)
		}
	}
}

func TestHyStartNeedsEnoughSamples(t *testing.T) {
	h := newHyStart(true, true)
	for range hsNRTTSample {
		h.onAck(mds, 100*ms, false, mds)
	}
	h.onAck(mds, 200*ms, true, mds)
	for range hsNRTTSample - 2 {
		h.onAck(mds, 200*ms, false, mds)
	}
	if h.inCSS() {
		t.Fatal("CSS with fewer than N_RTT_SAMPLE samples")
	}
	h.onAck(mds, 200*ms, false, mds)
	if !h.inCSS() {
		t.Fatal("no CSS after N_RTT_SAMPLE samples")
	}
}

func TestHyStartDisabledAndUnpaced(t *testing.T) {
	rise := t0.Add(400 * ms)
	rttAt := func(sent time.Time) time.Duration {
		if sent.Before(rise) {
			return 100 * ms
		}
		return 150 * ms
	}
	p := newPipe(newTestCubic(CubicConfig{DisableHyStart: true}), rttAt)
	p.until(t, 1<<20, func() bool { return p.c.Window() < 2000*mds })
	if !p.c.InSlowStart() || p.c.InConservativeSlowStart() {
		t.Fatal("HyStart++ acted while disabled")
	}

	// Unpaced: one ACK grows the window by at most L = 8 packets.
	c := newTestCubic(CubicConfig{Unpaced: true})
	r := fixedRTT(100 * ms)
	w := c.Window()
	c.OnAck(t0, 20*mds, t0.Add(-100*ms), r, c.Window())
	if c.Window() != w+8*mds {
		t.Fatalf("unpaced growth %d packets per ACK, want 8", (c.Window()-w)/mds)
	}
	c = newTestCubic(CubicConfig{})
	c.OnAck(t0, 20*mds, t0.Add(-100*ms), r, c.Window())
	if c.Window() != w+20*mds {
		t.Fatalf("paced growth %d packets per ACK, want 20", (c.Window()-w)/mds)
	}
}

func TestHyStartEndsOnLoss(t *testing.T) {
	c := newTestCubic(CubicConfig{})
	c.OnCongestionEvent(t0, t0, mds, 0)
	c.OnPersistentCongestion(t0.Add(time.Second))
	if c.s.hystart.active() {
		t.Fatal("HyStart++ still active after a congestion event")
	}
}
