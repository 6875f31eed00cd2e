package mux

import (
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
)

// TestSentRingShrinks: the sent-packet ring grows with the packets in
// flight during a bulk transfer and shrinks back once the session has been
// quiet for an epoch, at the acknowledgements its keepalives bring, so a
// session that has gone quiet keeps a ring of a few entries, not the one
// its busiest moment needed. ACK-only packets, which the peer never
// acknowledges, do not pin it (the receiving side's ring is full of them).
func TestSentRingShrinks(t *testing.T) {
	link := netsim.LinkConfig{Delay: 50 * time.Millisecond, Bandwidth: 200_000_000, QueueBytes: 1 << 20, MTU: 1500}
	net := netsim.New(3, link, link)
	a, b := pair(t, Config{}, Config{}, net.Now())
	appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
	appB.expect["bulk"] = 4 * mib
	appA.send("bulk", 3, 4*mib)
	peak := 0
	done := allDone(appA, appB)
	watch := func() bool {
		peak = max(peak, len(a.sent.buf), len(b.sent.buf))
		return done()
	}
	if err := net.Run(simEnd{appA}, simEnd{appB}, watch, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, app := range []*peerApp{appA, appB} {
		if app.err != nil {
			t.Fatal(app.err)
		}
	}
	if peak < 256 {
		t.Fatalf("the ring peaked at %d entries: the transfer never had many packets in flight", peak)
	}
	// Quiet time: keepalives (every 10 s) bring acknowledgements. The
	// first check after the transfer ends the busy epoch, the next one
	// shrinks the ring, so each side has shrunk within three intervals.
	net.Run(simEnd{appA}, simEnd{appB}, nil, 35*time.Second)
	for _, s := range []*Session{a, b} {
		if len(s.sent.buf) > 4*minSentRing {
			t.Errorf("a quiet session keeps a ring of %d entries (%d in use), want at most %d", len(s.sent.buf), s.sent.n, 4*minSentRing)
		}
	}
}

// TestSentRingResize: the ring keeps its packets, in order, across growth
// and shrinking, including when its head has wrapped around.
func TestSentRingResize(t *testing.T) {
	var r sentRing
	pn := uint64(0)
	push := func(k int) {
		for i := 0; i < k; i++ {
			r.add().size = int(pn)
			pn++
		}
	}
	pop := func(k int) {
		for i := 0; i < k; i++ {
			r.popFront()
		}
	}
	check := func() {
		t.Helper()
		for i := 0; i < r.n; i++ {
			if p := r.get(r.base + uint64(i)); p == nil || p.size != int(r.base)+i {
				t.Fatalf("entry %d of %d (base %d) lost", i, r.n, r.base)
			}
		}
	}
	push(3)
	pop(2)
	push(3) // wraps around in a ring of 4
	check()
	push(100) // grows
	check()
	if len(r.buf) < 104 {
		t.Fatalf("ring of %d for %d packets", len(r.buf), r.n)
	}
	pop(100)
	now := time.Now()
	r.shrink(now, time.Second) // ends the first epoch: its peak was 104
	if len(r.buf) < 104 {
		t.Fatalf("ring shrunk to %d below its epoch's peak", len(r.buf))
	}
	r.shrink(now.Add(time.Second), time.Second)
	check()
	if len(r.buf) > 4*r.n && len(r.buf) > minSentRing {
		t.Fatalf("ring of %d entries for %d packets after shrink", len(r.buf), r.n)
	}
	pop(r.n)
	r.shrink(now.Add(2*time.Second), time.Second)
	r.shrink(now.Add(3*time.Second), time.Second)
	if len(r.buf) != minSentRing {
		t.Fatalf("empty ring of %d entries, want %d", len(r.buf), minSentRing)
	}
}
