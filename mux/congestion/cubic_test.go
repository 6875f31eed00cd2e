package congestion

import (
	"math"
	"testing"
	"time"
)

const mds = 1200 // datagram size used throughout the tests

// t0 is an arbitrary, non-zero start of fake time.
var t0 = time.Unix(1_700_000_000, 0)

func newTestCubic(cfg CubicConfig) *Cubic {
	if cfg.MaxDatagramSize == 0 {
		cfg.MaxDatagramSize = mds
	}
	return NewCubic(cfg)
}

func fixedRTT(d time.Duration) *RTTStats {
	r := NewRTTStats(d)
	r.Update(d, 0, true)
	return &r
}

func pkts(bytes float64) float64 { return bytes / mds }

// fluidAcks drives c as a sender that always fills its window on a path
// with a fixed RTT and no queue: one full-size packet is acknowledged every
// rtt/cwnd, each sent one rtt earlier. fn, if set, runs after every ACK.
// It returns the time after the last ACK.
func fluidAcks(c *Cubic, r *RTTStats, now, until time.Time, rtt time.Duration, fn func(now time.Time)) time.Time {
	for now.Before(until) {
		w := c.Window()
		c.OnPacketSent(now, mds, w)
		c.OnAck(now, mds, now.Add(-rtt), r, w)
		if fn != nil {
			fn(now)
		}
		now = now.Add(time.Duration(float64(rtt) * mds / float64(c.Window())))
	}
	return now
}

// lossAt builds a controller that had a window of w packets when a loss was
// detected at t0, for a packet sent just before.
func lossAt(t *testing.T, w int) *Cubic {
	t.Helper()
	c := newTestCubic(CubicConfig{InitialWindowPackets: w})
	if c.Window() != w*mds {
		t.Fatalf("initial window %d, want %d", c.Window(), w*mds)
	}
	c.OnCongestionEvent(t0, t0.Add(-time.Millisecond), mds, c.Window())
	return c
}

func TestCubicInitialState(t *testing.T) {
	c := NewCubic(CubicConfig{})
	if c.Window() != 10*DefaultMaxDatagramSize || !c.InSlowStart() || c.SlowStartThreshold() != math.MaxInt {
		t.Fatalf("window %d slowstart %v ssthresh %d", c.Window(), c.InSlowStart(), c.SlowStartThreshold())
	}
	if c.InRecovery(t0) {
		t.Fatal("in recovery before any loss")
	}
	if InitialWindow(9000) != 18000 || InitialWindow(1200) != 12000 || MinimumWindow(1200) != 2400 {
		t.Fatal("RFC 9002 §7.2 windows")
	}
	// CanSend: a full packet must fit.
	if !c.CanSend(c.Window()-DefaultMaxDatagramSize) || c.CanSend(c.Window()-DefaultMaxDatagramSize+1) {
		t.Fatal("CanSend boundary")
	}
}

func TestCubicReductionAndK(t *testing.T) {
	c := lossAt(t, 1000)
	if got, want := c.Window(), 700*mds; got != want {
		t.Fatalf("window after loss %d, want %d (0.7×)", got, want)
	}
	if c.SlowStartThreshold() != 700*mds || c.InSlowStart() {
		t.Fatalf("ssthresh %d, slow start %v", c.SlowStartThreshold(), c.InSlowStart())
	}
	if pkts(c.s.wMax) != 1000 {
		t.Fatalf("W_max %v packets", pkts(c.s.wMax))
	}
	r := fixedRTT(100 * ms)
	start := t0.Add(100*ms + 1)
	c.OnAck(start, mds, start.Add(-100*ms), r, c.Window())
	// K = ∛(W_max × (1 − β) / C) = ∛(1000 × 0.3 / 0.4) = ∛750 s.
	if want := math.Cbrt(750); math.Abs(c.s.k-want) > 1e-9 {
		t.Fatalf("K = %v, want %v", c.s.k, want)
	}
}

func TestCubicFollowsCubicFunction(t *testing.T) {
	const rtt = 100 * ms
	c := lossAt(t, 1000)
	r := fixedRTT(rtt)
	start := t0.Add(rtt + 1) // first ACK of a packet sent after the loss
	k := math.Cbrt(750)
	checks := []float64{0.5, 1, 2, 3, 5, 7, 9, 10, 11, 12, 13}
	next := 0
	fluidAcks(c, r, start, start.Add(13500*ms), rtt, func(now time.Time) {
		if next == len(checks) {
			return
		}
		tt := now.Sub(start).Seconds()
		if tt < checks[next] {
			return
		}
		next++
		want := CubicC*math.Pow(tt-k, 3) + 1000
		got := pkts(c.s.cwnd)
		if math.Abs(got-want) > 1 {
			t.Errorf("t=%.2fs: cwnd %.2f packets, W_cubic(t) %.2f", tt, got, want)
		}
		if c.s.wEst >= c.s.cwnd {
			t.Errorf("t=%.2fs: Reno-friendly estimate %.1f dominates cwnd %.1f", tt, pkts(c.s.wEst), got)
		}
	})
	if next != len(checks) {
		t.Fatalf("only %d checks ran", next)
	}
}

func TestCubicRenoFriendlyRegion(t *testing.T) {
	// A small window and a short RTT: Reno's one packet per RTT beats the
	// cubic curve, which needs K ≈ 2.47 s to climb back to W_max = 20.
	const rtt = 10 * ms
	c := lossAt(t, 20)
	r := fixedRTT(rtt)
	start := t0.Add(rtt + 1)
	end := fluidAcks(c, r, start, start.Add(time.Second), rtt, nil)
	tt := end.Sub(start).Seconds()
	wc := pkts(c.wCubic(tt))
	got := pkts(c.s.cwnd)
	if got <= wc+10 {
		t.Fatalf("cwnd %.1f packets not in the Reno-friendly region (W_cubic %.1f)", got, wc)
	}
	// Reno estimate: alpha_cubic ≈ 0.53 packet/RTT from 14 until it reaches
	// cwnd_prior = 20, then 1 packet/RTT.
	rounds := tt / rtt.Seconds()
	toPrior := 6 / cubicAlpha
	want := 20 + (rounds - toPrior)
	if math.Abs(got-want) > 1 {
		t.Fatalf("cwnd %.1f packets after %.0f RTTs, want ≈ %.1f (Reno)", got, rounds, want)
	}
	if math.Abs(got-pkts(c.s.wEst)) > 0.01 {
		t.Fatalf("cwnd %.2f is not W_est %.2f", got, pkts(c.s.wEst))
	}
}

func TestCubicTargetCappedAt1Point5(t *testing.T) {
	// With a huge RTT the target W_cubic(t+RTT) is far above 1.5 cwnd, so
	// each acknowledged byte adds exactly half a byte.
	c := lossAt(t, 100)
	r := fixedRTT(100 * time.Second)
	now := t0.Add(time.Second)
	c.OnAck(now, mds, t0.Add(1), r, c.Window()) // starts the epoch
	w0 := c.s.cwnd
	now = now.Add(time.Second)
	c.OnAck(now, mds, t0.Add(1), r, c.Window())
	c.OnAck(now, 10*mds, t0.Add(1), r, c.Window())
	if got, want := c.s.cwnd, w0+0.5*11*mds; math.Abs(got-want) > 1e-6 {
		t.Fatalf("cwnd %.1f, want %.1f", got, want)
	}
}

func TestCubicFastConvergence(t *testing.T) {
	const rtt = 100 * ms
	c := lossAt(t, 100) // W_max 100, cwnd 70
	r := fixedRTT(rtt)
	start := t0.Add(rtt + 1)
	now := start
	for pkts(c.s.cwnd) < 80 {
		now = fluidAcks(c, r, now, now.Add(rtt), rtt, nil)
	}
	w := c.s.cwnd // below W_max = 100 packets
	if pkts(w) >= 100 {
		t.Fatalf("window %.1f already regained W_max", pkts(w))
	}
	c.OnCongestionEvent(now, now.Add(-time.Millisecond), mds, c.Window())
	if want := w * (1 + CubicBeta) / 2; math.Abs(c.s.wMax-want) > 1e-6 {
		t.Fatalf("W_max %.2f packets, want %.2f (fast convergence)", pkts(c.s.wMax), pkts(want))
	}
	if want := w * CubicBeta; math.Abs(c.s.cwnd-want) > 1e-6 {
		t.Fatalf("cwnd %.2f, want %.2f", pkts(c.s.cwnd), pkts(want))
	}
	// A loss at or above W_max sets W_max to the window itself.
	c2 := lossAt(t, 50)
	c2.OnCongestionEvent(t0.Add(time.Second), t0.Add(time.Second-1), mds, 0)
	if c2.s.wMax != 35*mds*(1+CubicBeta)/2 {
		t.Fatalf("second W_max %.2f", pkts(c2.s.wMax))
	}
	c3 := newTestCubic(CubicConfig{InitialWindowPackets: 40})
	c3.s.wMax, c3.s.wMaxSet = 30*mds, true
	c3.OnCongestionEvent(t0, t0, mds, 0)
	if c3.s.wMax != 40*mds {
		t.Fatalf("W_max %.2f, want 40 (window above the old W_max)", pkts(c3.s.wMax))
	}
}

func TestCubicOneReductionPerRecoveryPeriod(t *testing.T) {
	c := lossAt(t, 100) // recovery started at t0
	w := c.Window()
	if !c.InRecovery(t0.Add(-time.Second)) || !c.InRecovery(t0) || c.InRecovery(t0.Add(1)) {
		t.Fatal("InRecovery boundary")
	}
	// More losses of packets sent before the recovery began: no reduction.
	c.OnCongestionEvent(t0.Add(50*ms), t0.Add(-10*ms), 5*mds, w)
	c.OnCongestionEvent(t0.Add(60*ms), t0, mds, w)
	if c.Window() != w {
		t.Fatalf("window reduced again within the recovery period: %d → %d", w, c.Window())
	}
	// ACKs of packets sent before the recovery do not grow the window.
	r := fixedRTT(100 * ms)
	c.OnAck(t0.Add(70*ms), 10*mds, t0.Add(-30*ms), r, w)
	if c.Window() != w {
		t.Fatal("window grew during recovery")
	}
	// A loss of a packet sent after the recovery began starts a new one.
	c.OnCongestionEvent(t0.Add(200*ms), t0.Add(100*ms), mds, w)
	if c.Window() != int(float64(w)*CubicBeta) {
		t.Fatalf("window %d after a new congestion event, want %d", c.Window(), int(float64(w)*CubicBeta))
	}
	if !c.InRecovery(t0.Add(150 * ms)) {
		t.Fatal("new recovery period not started")
	}
}

func TestCubicSpuriousUndo(t *testing.T) {
	const rtt = 50 * ms
	// From congestion avoidance, mid-epoch.
	c := lossAt(t, 100)
	r := fixedRTT(rtt)
	now := fluidAcks(c, r, t0.Add(rtt+1), t0.Add(3*time.Second), rtt, nil)
	before := c.s
	c.OnCongestionEvent(now, now.Add(-rtt), mds, c.Window())
	if c.Window() >= int(before.cwnd) {
		t.Fatal("no reduction")
	}
	c.OnSpuriousCongestion(now.Add(rtt))
	if c.s != before {
		t.Fatalf("undo did not restore the state:\n got %+v\nwant %+v", c.s, before)
	}
	if c.Window() != int(before.cwnd) || c.s.k != before.k || c.s.wMax != before.wMax || c.s.ssthresh != before.ssthresh {
		t.Fatal("cwnd/K/W_max/ssthresh not restored")
	}
	// A second undo without a reduction does nothing.
	c.OnSpuriousCongestion(now.Add(2 * rtt))
	if c.s != before {
		t.Fatal("second undo changed the state")
	}

	// From slow start: the undo goes back to slow start with HyStart++.
	c = newTestCubic(CubicConfig{})
	before = c.s
	c.OnCongestionEvent(t0, t0, mds, c.Window())
	if c.InSlowStart() {
		t.Fatal("still in slow start after a loss")
	}
	c.OnSpuriousCongestion(t0.Add(rtt))
	if c.s != before || !c.InSlowStart() || !c.s.hystart.active() || c.InRecovery(t0) {
		t.Fatal("slow-start state not restored")
	}
}

func TestCubicPersistentCongestion(t *testing.T) {
	c := lossAt(t, 100)
	ss := c.SlowStartThreshold()
	c.OnPersistentCongestion(t0.Add(time.Second))
	if c.Window() != 2*mds {
		t.Fatalf("window %d after persistent congestion, want %d", c.Window(), 2*mds)
	}
	if c.SlowStartThreshold() != ss || !c.InSlowStart() {
		t.Fatal("ssthresh changed by persistent congestion")
	}
	// Losses of packets sent before the collapse do not reduce again.
	if !c.InRecovery(t0.Add(time.Second)) || c.InRecovery(t0.Add(time.Second+1)) {
		t.Fatal("no recovery period from the collapse")
	}
	c.OnCongestionEvent(t0.Add(1500*ms), t0.Add(900*ms), mds, 0)
	if c.SlowStartThreshold() != ss {
		t.Fatal("a loss from before the collapse reduced ssthresh")
	}
	c.OnSpuriousCongestion(t0.Add(2 * time.Second))
	if c.Window() != 2*mds {
		t.Fatal("persistent congestion was undone")
	}
	// Without a preceding congestion event, ssthresh is still set.
	c = newTestCubic(CubicConfig{})
	c.OnPersistentCongestion(t0)
	if c.Window() != 2*mds || c.SlowStartThreshold() != 7*mds {
		t.Fatalf("window %d ssthresh %d", c.Window(), c.SlowStartThreshold())
	}
	// Slow start back to ssthresh, then congestion avoidance with HyStart++ off.
	r := fixedRTT(50 * ms)
	now := t0.Add(time.Second)
	c.OnPacketSent(now, mds, mds)
	for i := 0; c.InSlowStart(); i++ {
		if i > 100 {
			t.Fatal("slow start did not end at ssthresh")
		}
		now = now.Add(ms)
		c.OnAck(now, mds, t0.Add(time.Second), r, c.Window())
	}
	if c.s.hystart.active() {
		t.Fatal("HyStart++ ran after persistent congestion")
	}
}

func TestCubicMinimumWindow(t *testing.T) {
	c := newTestCubic(CubicConfig{})
	now := t0
	for range 20 {
		now = now.Add(time.Second)
		c.OnCongestionEvent(now, now.Add(-1), mds, c.Window())
		if c.Window() < 2*mds {
			t.Fatalf("window %d below 2 packets", c.Window())
		}
	}
	if c.Window() != 2*mds || c.SlowStartThreshold() != 2*mds {
		t.Fatalf("window %d ssthresh %d, want the minimum", c.Window(), c.SlowStartThreshold())
	}
	if !c.CanSend(mds) || c.CanSend(mds+1) {
		t.Fatal("CanSend at the minimum window")
	}
	c = newTestCubic(CubicConfig{MinimumWindowPackets: 4})
	for range 20 {
		now = now.Add(time.Second)
		c.OnCongestionEvent(now, now.Add(-1), mds, c.Window())
	}
	if c.Window() != 4*mds {
		t.Fatalf("window %d, want the configured 4 packets", c.Window())
	}
}

func TestCubicAppLimited(t *testing.T) {
	const rtt = 50 * ms
	r := fixedRTT(rtt)

	// Slow start: using less than half the window does not grow it.
	c := newTestCubic(CubicConfig{})
	w := c.Window()
	now := t0
	for range 50 {
		c.OnPacketSent(now, mds, 2*mds)
		now = now.Add(rtt)
		c.OnAck(now, mds, now.Add(-rtt), r, 2*mds)
	}
	if c.Window() != w {
		t.Fatalf("slow start grew while application limited: %d → %d", w, c.Window())
	}

	// Congestion avoidance: no growth, and the curve is frozen, not skipped.
	c = lossAt(t, 100)
	now = fluidAcks(c, r, t0.Add(rtt+1), t0.Add(2*time.Second), rtt, nil)
	w = c.Window()
	for range 1000 { // 10 s application limited
		now = now.Add(10 * ms)
		c.OnAck(now, mds, now.Add(-rtt), r, w/2)
	}
	if c.Window() != w {
		t.Fatalf("congestion avoidance grew while application limited: %d → %d", w, c.Window())
	}
	c.OnAck(now.Add(ms), mds, now.Add(ms-rtt), r, w)
	if grew := pkts(float64(c.Window() - w)); grew > 1 {
		t.Fatalf("window jumped %.1f packets after the application-limited period", grew)
	}
}

func TestCubicHyStartExitSetsWMax(t *testing.T) {
	c := newTestCubic(CubicConfig{})
	c.s.ssthresh = c.s.cwnd // as if CSS had just ended
	c.s.hystart.finish()
	r := fixedRTT(50 * ms)
	w := c.s.cwnd
	c.OnAck(t0, mds, t0.Add(-50*ms), r, c.Window())
	if c.s.wMax != w || c.s.k != 0 || c.s.cwndPrior != w {
		t.Fatalf("W_max %v K %v cwnd_prior %v, want %v 0 %v", c.s.wMax, c.s.k, c.s.cwndPrior, w, w)
	}
}

func TestCubicSetMaxDatagramSize(t *testing.T) {
	c := newTestCubic(CubicConfig{})
	c.SetMaxDatagramSize(1452)
	if c.Window() != 10*1452 || c.MaxDatagramSize() != 1452 {
		t.Fatalf("initial window not recomputed: %d", c.Window())
	}
	r := fixedRTT(50 * ms)
	c.OnAck(t0, 1452, t0.Add(-50*ms), r, c.Window())
	w := c.Window()
	c.SetMaxDatagramSize(9000) // the window keeps its bytes, above the new minimum
	if c.Window() != 18000 {
		t.Fatalf("window %d, want the 18000-byte minimum", c.Window())
	}
	c.SetMaxDatagramSize(1200)
	if c.Window() != max(w, 18000) {
		t.Fatalf("window %d changed when the size shrank", c.Window())
	}
}

func TestCubicPacingRate(t *testing.T) {
	c := newTestCubic(CubicConfig{})
	r := fixedRTT(100 * ms)
	// Slow start: 2 × 12000 B / 0.1 s.
	if got := c.PacingRate(r); math.Abs(got-240000) > 1e-6 {
		t.Fatalf("slow-start pacing rate %v", got)
	}
	c.OnCongestionEvent(t0, t0, mds, 0)
	// Congestion avoidance: 1.25 × 8400 / 0.1.
	if got := c.PacingRate(r); math.Abs(got-105000) > 1e-6 {
		t.Fatalf("pacing rate %v", got)
	}
	var none RTTStats // before a sample: the 333 ms initial RTT
	if got := c.PacingRate(&none); math.Abs(got-1.25*8400/0.333) > 1e-6 {
		t.Fatalf("pacing rate before a sample %v", got)
	}
	if c.PacingRate(nil) != 0 || PacingRate(100, 0, 2) != 0 {
		t.Fatal("no RTT must mean no pacing")
	}
}

func TestCubicMaxWindow(t *testing.T) {
	c := newTestCubic(CubicConfig{MaxWindow: 20 * mds})
	r := fixedRTT(10 * ms)
	for i := range 100 {
		now := t0.Add(time.Duration(i) * ms)
		c.OnAck(now, 5*mds, now.Add(-10*ms), r, c.Window())
	}
	if c.Window() != 20*mds {
		t.Fatalf("window %d, want the 20-packet cap", c.Window())
	}
}

// TestCubicInit: Init makes in place the controller NewCubic returns, and
// starts a used one afresh.
func TestCubicInit(t *testing.T) {
	cfg := CubicConfig{MaxDatagramSize: mds, InitialWindowPackets: 4, MaxWindow: 1 << 20}
	want := NewCubic(cfg)
	var c Cubic
	c.Init(cfg)
	if c != *want {
		t.Fatalf("Init made %+v, NewCubic %+v", c, *want)
	}
	fluidAcks(&c, fixedRTT(50*time.Millisecond), t0, t0.Add(5*time.Second), 50*time.Millisecond, nil)
	c.OnCongestionEvent(t0.Add(6*time.Second), t0.Add(5*time.Second), mds, c.Window())
	if c == *want {
		t.Fatal("the controller did not change: the test proves nothing")
	}
	c.Init(cfg)
	if c != *want {
		t.Fatalf("Init of a used controller made %+v, want %+v", c, *want)
	}
}
