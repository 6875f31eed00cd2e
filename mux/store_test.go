package mux

import (
	"testing"
	"time"
	"unsafe"
)

// TestSessionBlockSize: New's one allocation fits the 4 KiB size class
// with the default controller, and an idle session holds nothing else
// (TestIdleFootprint).
func TestSessionBlockSize(t *testing.T) {
	if n := unsafe.Sizeof(sessionAllocCubic{}); n > 4096 {
		t.Fatalf("a session with its store and controller is %d bytes, want at most 4,096", n)
	}
	if n := unsafe.Sizeof(sessionAlloc{}); n > 3456 {
		t.Fatalf("a session with its store is %d bytes, want at most 3,456", n)
	}
}

// TestSentRingFirstStorage: a session's sent-packet ring starts in its
// store, moves to the heap to grow, and comes back when it shrinks to its
// smallest size, keeping its packets.
func TestSentRingFirstStorage(t *testing.T) {
	var first [minSentRing]sentPacket
	r := sentRing{first: &first}
	pn := 0
	push := func(k int) {
		for range k {
			r.add().size = pn
			pn++
		}
	}
	inFirst := func() bool { return &r.buf[0] == &first[0] }
	push(3)
	if !inFirst() {
		t.Fatal("the smallest ring is not the store's")
	}
	push(10)
	if inFirst() || len(r.buf) < 13 {
		t.Fatalf("ring of %d entries for 13 packets", len(r.buf))
	}
	for range 11 {
		r.popFront()
	}
	now := time.Unix(1e9, 0)
	r.shrink(now, time.Second) // ends the busy epoch
	r.shrink(now.Add(time.Second), time.Second)
	r.shrink(now.Add(2*time.Second), time.Second)
	if len(r.buf) != minSentRing || !inFirst() {
		t.Fatalf("quiet ring of %d entries, in the store: %v", len(r.buf), inFirst())
	}
	for i := range r.n {
		if p := r.get(r.base + uint64(i)); p == nil || p.size != int(r.base)+i {
			t.Fatalf("entry %d lost moving back to the store", i)
		}
	}
}

// TestPathChallenge: a PATH_CHALLENGE is answered with its data, the
// answer is reported, and the round trip allocates nothing.
func TestPathChallenge(t *testing.T) {
	a, b, w := established(t)
	round := func() {
		w.now = w.now.Add(time.Millisecond)
		w.buf = w.buf[:cap(w.buf)]
		a.SendPathChallenge([8]byte{1, 2, 3, 4, 5, 6, 7, byte(w.now.UnixMilli())})
		pollTo(a, b, w.buf, w.now)
		pollTo(b, a, w.buf, w.now)
	}
	round()
	if ev, ok := a.PollEvent(); !ok || ev.Kind&EventPathResponse == 0 {
		t.Fatalf("event %+v %v, want a path response", ev, ok)
	}
	if got := a.PathResponse(); got != [8]byte{1, 2, 3, 4, 5, 6, 7, byte(w.now.UnixMilli())} {
		t.Fatalf("path response %x", got)
	}
	drainEvents(b)
	allocs := testing.AllocsPerRun(100, func() {
		round()
		drainEvents(a)
		drainEvents(b)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per path challenge, want 0", allocs)
	}
}

// pollTo delivers what from sends now to to, without recording anything.
func pollTo(from, to *Session, buf []byte, now time.Time) {
	for {
		n := from.Poll(buf, now)
		if n == 0 {
			return
		}
		to.Receive(buf[:n], now)
	}
}
