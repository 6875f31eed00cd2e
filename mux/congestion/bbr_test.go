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

// TestBBRStates: fed a steady delivery of 10 MB/s at a 20 ms round trip,
// BBR leaves Startup once the rate stops growing, drains, and cruises in
// ProbeBW with a window of about two bandwidth-delay products and a
// pacing rate at the bandwidth (ProbeBW's phases give 0.75–1.25 of it).
func TestBBRStates(t *testing.T) {
	const (
		rate = 10e6
		rtt  = 20 * time.Millisecond
		mss  = 1452
	)
	b := NewBBR(mss)
	rs := NewRTTStats(0)
	now := time.Unix(1_700_000_000, 0)
	sendAt := now
	inflight := 0
	gap := time.Duration(float64(mss) / rate * float64(time.Second))
	for i := 0; i < 20000; i++ {
		b.OnPacketSent(sendAt, mss, inflight+mss)
		inflight += mss
		ackAt := sendAt.Add(rtt)
		rs.Update(rtt, 0, true)
		b.OnAck(ackAt, mss, sendAt, &rs, inflight)
		inflight -= mss
		sendAt = sendAt.Add(gap)
	}
	if b.state != bbrProbeBW {
		t.Fatalf("state %d after 20,000 packets, want ProbeBW", b.state)
	}
	bdp := rate * rtt.Seconds()
	if w := float64(b.Window()); w < 1.8*bdp || w > 2.2*bdp {
		t.Fatalf("window %v, want about 2 × BDP (%v)", w, bdp)
	}
	if p := b.PacingRate(&rs); p < 0.7*rate || p > 1.3*rate {
		t.Fatalf("pacing %v B/s, want about %v", p, rate)
	}
	b.OnCongestionEvent(sendAt, sendAt, mss, int(bdp))
	if w := b.Window(); w > int(bdp) {
		t.Fatalf("window %d after a loss at %v in flight, want at most that", w, bdp)
	}
}
