package congestion

import (
	"testing"
	"time"
)

// TestMaxFilter: the filter returns the largest sample of the last window
// rounds, and forgets a maximum once it is older than that.
func TestMaxFilter(t *testing.T) {
	f := maxFilter{window: 10}
	f.update(100, 1)
	f.update(50, 2)
	if f.get() != 100 {
		t.Fatalf("max %v, want 100", f.get())
	}
	for r := uint64(3); r <= 12; r++ {
		f.update(60, r)
	}
	if f.get() != 60 {
		t.Fatalf("after 11 rounds the max is %v, want the newer 60", f.get())
	}
	f.update(200, 13)
	if f.get() != 200 {
		t.Fatalf("a new maximum %v, want 200", f.get())
	}
}

// bbrPath drives b through a path whose bottleneck delivers rate
// bytes per second, one way delay rtt/2 each way and no loss: the sender
// sends whenever the window and the pacer allow (appLimited, if set, says
// whether the application has data at a given packet count), packets
// queue at the bottleneck, and each ACK comes back rtt after its packet
// left the bottleneck's queue, from start on. It returns the time of the last ACK and the
// RTT statistics.
func bbrPath(b *BBR, start time.Time, rate float64, rtt time.Duration, packets int, appLimited func(sent int) bool) (time.Time, *RTTStats) {
	const mss = 1452
	rs := NewRTTStats(0)
	now := start
	service := time.Duration(float64(mss) / rate * float64(time.Second))
	type pkt struct{ sent, acked time.Time }
	var flight []pkt
	inflight, sent := 0, 0
	free := now     // when the bottleneck is next free
	nextSend := now // the pacer's next slot
	for sent < packets || len(flight) > 0 {
		// The next event: an ACK or a send.
		ackAt := time.Time{}
		if len(flight) > 0 {
			ackAt = flight[0].acked
		}
		canSend := sent < packets && b.CanSend(inflight)
		if canSend && appLimited != nil && appLimited(sent) && inflight > 0 {
			canSend = false
		}
		if canSend && (ackAt.IsZero() || !nextSend.After(ackAt)) {
			now = later(now, nextSend)
			b.OnPacketSent(now, mss, inflight+mss)
			inflight += mss
			sent++
			leave := later(free, now.Add(rtt/2)).Add(service)
			free = leave
			flight = append(flight, pkt{sent: now, acked: leave.Add(rtt / 2)})
			if p := b.PacingRate(&rs); p > 0 {
				nextSend = now.Add(time.Duration(float64(mss) / p * float64(time.Second)))
			}
			continue
		}
		if ackAt.IsZero() {
			now = now.Add(time.Millisecond) // the application has nothing yet
			continue
		}
		now = later(now, ackAt)
		p := flight[0]
		flight = flight[1:]
		rs.Update(now.Sub(p.sent), 0, true)
		b.OnAck(now, mss, p.sent, &rs, inflight)
		inflight -= mss
	}
	return now, &rs
}

// TestBBRStates: through a 10 MB/s bottleneck at a 20 ms round trip, BBR
// leaves Startup once the rate stops growing, drains, and cruises in
// ProbeBW with a window of about two bandwidth-delay products and a
// pacing rate at the bandwidth (ProbeBW's phases give 0.75–1.25 of it); a
// loss caps the window below the inflight that saw it.
func TestBBRStates(t *testing.T) {
	const (
		rate = 10e6
		rtt  = 20 * time.Millisecond
		mss  = 1452
	)
	b := NewBBR(mss)
	now, rs := bbrPath(b, bbrT0, rate, rtt, 20000, nil)
	if b.state != bbrProbeBW {
		t.Fatalf("state %d after 20,000 packets, want ProbeBW", b.state)
	}
	bdp := rate * rtt.Seconds()
	if w := float64(b.Window()); w < 1.8*bdp || w > 2.4*bdp {
		t.Fatalf("window %v, want about 2 × BDP (%v)", w, bdp)
	}
	if p := b.PacingRate(rs); p < 0.7*rate || p > 1.3*rate {
		t.Fatalf("pacing %v B/s, want about %v", p, rate)
	}
	b.OnCongestionEvent(now, now, mss, int(bdp))
	if w := b.Window(); w > int(bdp) {
		t.Fatalf("window %d after a loss at %v in flight, want at most that", w, bdp)
	}
}

// TestBBRStartupAfterIdle: rounds in which the application sends one
// packet at a time (a request/response stream before a bulk transfer)
// do not end Startup; the bulk that follows then finds the bandwidth at
// Startup's pace, not ProbeBW's.
func TestBBRStartupAfterIdle(t *testing.T) {
	const rate, rtt = 10e6, 20 * time.Millisecond
	b := NewBBR(1452)
	idleEnd, _ := bbrPath(b, bbrT0, rate, rtt, 60, func(int) bool { return true })
	if b.state != bbrStartup {
		t.Fatalf("state %d after 60 app-limited round trips, want Startup", b.state)
	}
	bbrPath(b, idleEnd, rate, rtt, 1000, nil)
	if bw := b.btlBw.get(); bw < 0.9*rate {
		t.Fatalf("bandwidth %.0f B/s after 1,000 packets of bulk, want about %.0f", bw, rate)
	}
}

// TestBBRCapRegrows: after a loss caps the window, loss-free rounds grow
// the cap by one packet, then two, four … (not one per round, as Reno's
// window), so a capped sender is back at the model's window within a few
// rounds.
func TestBBRCapRegrows(t *testing.T) {
	const rate, rtt, mss = 10e6, 20 * time.Millisecond, 1452
	b := NewBBR(mss)
	now, rs := bbrPath(b, bbrT0, rate, rtt, 20000, nil)
	model := b.Window()
	b.OnCongestionEvent(now, now, mss, model/2)
	capped := b.Window()
	if capped > model/2 {
		t.Fatalf("window %d after a loss at %d in flight", capped, model/2)
	}
	// Eight loss-free rounds: a round ends when a packet sent after its
	// start is acknowledged.
	for r := 1; r <= 8; r++ {
		now = now.Add(rtt)
		b.OnPacketSent(now, mss, mss)
		b.OnAck(now.Add(rtt), mss, now, rs, mss)
		now = now.Add(rtt)
	}
	if w := b.Window(); w < min(model, capped+(1+2+4+8+16+32+64)*mss) {
		t.Fatalf("window %d after 8 loss-free rounds from %d (model %d): the cap grows too slowly", w, capped, model)
	}
}

// TestBBRShortPathPacing: on a path whose min RTT is under bbrShortPath,
// ProbeBW paces at twice the bandwidth, so that the window (two BDPs plus
// the ACK bursts) rules and a transfer limited by the hosts' CPUs is not
// held back by its own measured rate; on a longer path it paces at the
// phase's gain.
func TestBBRShortPathPacing(t *testing.T) {
	for _, tc := range []struct {
		rtt     time.Duration
		minGain float64
		maxGain float64
	}{{200 * time.Microsecond, 1.9, 2.1}, {20 * time.Millisecond, 0.7, 1.3}} {
		b := NewBBR(1452)
		_, rs := bbrPath(b, bbrT0, 10e6, tc.rtt, 20000, nil)
		if b.state != bbrProbeBW {
			t.Fatalf("rtt %v: state %d", tc.rtt, b.state)
		}
		g := b.PacingRate(rs) / b.btlBw.get()
		if g < tc.minGain || g > tc.maxGain {
			t.Fatalf("rtt %v: pacing at %.2f × the bandwidth, want %.2f–%.2f", tc.rtt, g, tc.minGain, tc.maxGain)
		}
	}
}

// bbrT0 is where the simulated clocks start.
var bbrT0 = time.Unix(1_700_000_000, 0)

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestRateRing: the ring bisects to the same point a linear scan finds,
// grows only while its oldest point is still wanted, and keeps its points
// in order across growth and wrap-around.
func TestRateRing(t *testing.T) {
	var r rateRing
	if _, _, ok := r.before(bbrT0); ok {
		t.Fatal("an empty ring found a point")
	}
	type pt struct {
		at    time.Time
		total uint64
	}
	var all []pt
	now, total := bbrT0, uint64(0)
	for i := 0; i < 5000; i++ {
		now = now.Add(time.Duration(1+i%7) * time.Microsecond)
		total += uint64(i % 13)
		r.add(now, total, 300*time.Microsecond)
		all = append(all, pt{now, total})
		if i%97 != 0 {
			continue
		}
		// Any time from before the ring's oldest point to after its newest.
		for _, back := range []time.Duration{0, 3 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, time.Hour} {
			q := now.Add(-back)
			at, tot, ok := r.before(q)
			oldest := all[len(all)-r.n]
			want := oldest
			for _, p := range all[len(all)-r.n:] {
				if !p.at.After(q) {
					want = p
				}
			}
			if !ok || !at.Equal(want.at) || tot != want.total {
				t.Fatalf("point %d, before(now−%v) = %v %d, want %v %d", i, back, at.Sub(bbrT0), tot, want.at.Sub(bbrT0), want.total)
			}
		}
	}
	// 300 µs at 1–7 µs a point is at most 300 points: the ring grew to 512
	// at most, and holds at least the last 300 µs.
	if len(r.p) > bbrRing || r.epoch.Add(r.p[r.head].at).After(now.Add(-300*time.Microsecond)) {
		t.Fatalf("ring of %d points reaches back %v, want ≤ %d points and ≥ 300 µs", len(r.p), now.Sub(r.epoch.Add(r.p[r.head].at)), bbrRing)
	}
	// Sparse points (one per millisecond, 2 ms kept) never grow the ring.
	var s rateRing
	for i := 0; i < 1000; i++ {
		s.add(bbrT0.Add(time.Duration(i)*time.Millisecond), uint64(i), 2*time.Millisecond)
	}
	if len(s.p) != bbrRingMin {
		t.Fatalf("a ring of sparse points grew to %d", len(s.p))
	}
}

// TestBBRSmallWhenSlow: a BBR session at a modest rate keeps small rate
// rings (a full one is 8 KiB; at 1 MB/s and a 20 ms round trip the ACK
// ring holds 80 ms, the send ring 120 ms, of 690 packets a second): memory
// follows the traffic, and once grown the per-packet path allocates nothing.
func TestBBRSmallWhenSlow(t *testing.T) {
	b := NewBBR(1452)
	bbrPath(b, bbrT0, 1e6, 20*time.Millisecond, 2000, nil) // 1 MB/s: about 14 ACKs per round trip
	if len(b.acks.p) > 64 || len(b.sends.p) > 128 {
		t.Fatalf("rings of %d and %d points at 1 MB/s", len(b.acks.p), len(b.sends.p))
	}
	rs := NewRTTStats(0)
	rs.Update(20*time.Millisecond, 0, true)
	now := bbrT0.Add(time.Hour)
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(700 * time.Microsecond)
		b.OnPacketSent(now, 1452, 14520)
		b.OnAck(now, 1452, now.Add(-20*time.Millisecond), &rs, 14520)
	}); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}
