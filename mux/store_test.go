package mux

import (
	"math/rand/v2"
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

// TestSentRingOverflow: a packet's messages beyond the first live in the
// ring's overflow; against a model, through growth of ring and overflow,
// wrap-around, the front retired one packet at a time, and shrinking back
// to the store's storage.
func TestSentRingOverflow(t *testing.T) {
	var first [minSentRing]sentPacket
	var firstMore [minSentMore]frameRef
	r := sentRing{first: &first, firstMore: &firstMore}
	var model [][]frameRef // frames of base, base+1, ...
	rng := rand.New(rand.NewPCG(1, 2))
	next := uint64(0)
	check := func() {
		t.Helper()
		if r.n != len(model) {
			t.Fatalf("ring holds %d packets, model %d", r.n, len(model))
		}
		for i, fs := range model {
			sp := r.get(r.base + uint64(i))
			if int(sp.nf) != len(fs) {
				t.Fatalf("packet %d has %d frames, want %d", r.base+uint64(i), sp.nf, len(fs))
			}
			for k, want := range fs {
				if got := *r.frame(sp, k); got != want {
					t.Fatalf("packet %d frame %d = %+v, want %+v", r.base+uint64(i), k, got, want)
				}
			}
		}
	}
	for step := range 20000 {
		switch {
		case rng.IntN(3) > 0 && r.n < 300 || r.n == 0:
			sp := r.add()
			nf := rng.IntN(maxFrames + 2) // maxFrames+1 tries one too many
			var fs []frameRef
			for k := range nf {
				f := frameRef{kind: frameKind(k), ch: uint32(step), off: next, n: uint32(k)}
				next++
				ok := r.record(sp, f)
				if ok != (k < maxFrames) {
					t.Fatalf("record of frame %d reported %v", k, ok)
				}
				if ok {
					fs = append(fs, f)
				}
			}
			model = append(model, fs)
		default:
			r.popFront()
			model = model[1:]
		}
		if step%97 == 0 {
			check()
		}
		if step%1000 == 999 {
			for r.n > 0 {
				r.popFront()
				model = model[1:]
			}
			r.shrink(r.epoch.Add(time.Hour), time.Second)
			if r.mn != 0 || len(r.more) != minSentMore || &r.more[0] != &firstMore[0] {
				t.Fatalf("an empty ring's overflow: %d in use, %d long, not the store's", r.mn, len(r.more))
			}
		}
	}
	check()
}
