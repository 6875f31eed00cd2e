package noise

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestReplayDuplicate(t *testing.T) {
	var w ReplayWindow
	if !w.Check(0) || !w.Accept(0) {
		t.Fatal("counter 0 refused on an empty window")
	}
	if w.Check(0) || w.Accept(0) {
		t.Fatal("duplicate 0 accepted")
	}
	if !w.Accept(5) || w.Accept(5) || w.Check(5) {
		t.Fatal("duplicate 5 accepted")
	}
}

func TestReplayOutOfOrder(t *testing.T) {
	var w ReplayWindow
	for _, n := range []uint64{10, 5, 7, 9, 6, 0, 8, 1, 11, 3} {
		if !w.Accept(n) {
			t.Fatalf("in-window counter %d refused", n)
		}
	}
	for _, n := range []uint64{10, 5, 7, 9, 6, 0, 8, 1, 11, 3} {
		if w.Check(n) || w.Accept(n) {
			t.Fatalf("replayed counter %d accepted", n)
		}
	}
	for _, n := range []uint64{2, 4} {
		if !w.Accept(n) {
			t.Fatalf("unseen counter %d refused", n)
		}
	}
}

// TestReplayEdge: with newest counter L, L-(W-1) is the oldest counter
// still judged (accepted if unseen) and L-W is refused, for every
// alignment of L within a 64-bit word.
func TestReplayEdge(t *testing.T) {
	const W = ReplayWindowSize
	for l := uint64(W); l < W+2*replayBlockBits+1; l++ {
		var w ReplayWindow
		if !w.Accept(l) {
			t.Fatalf("L=%d refused", l)
		}
		if w.Check(l-W) || w.Accept(l-W) {
			t.Fatalf("L=%d: edge-outside counter L-%d accepted", l, W)
		}
		if !w.Check(l-(W-1)) || !w.Accept(l-(W-1)) {
			t.Fatalf("L=%d: edge-inside counter L-%d refused", l, W-1)
		}
		if w.Accept(l - (W - 1)) {
			t.Fatalf("L=%d: edge-inside counter accepted twice", l)
		}
		// Moving one forward pushes that counter out.
		if !w.Accept(l+1) || w.Check(l-(W-1)) {
			t.Fatalf("L=%d: window did not slide", l)
		}
	}
}

func TestReplayOld(t *testing.T) {
	var w ReplayWindow
	w.Accept(100000)
	for _, n := range []uint64{0, 1, 100000 - ReplayWindowSize, 100000 - 2*ReplayWindowSize} {
		if w.Check(n) || w.Accept(n) {
			t.Fatalf("counter %d, older than the window, accepted", n)
		}
	}
}

func TestReplayFarJump(t *testing.T) {
	var w ReplayWindow
	for n := uint64(0); n < 200; n++ {
		w.Accept(n)
	}
	// Same bit positions, many rings later: must read as fresh.
	far := uint64(3*replayBlocks*replayBlockBits) + 50
	if !w.Accept(far) {
		t.Fatal("far jump refused")
	}
	for n := far - 40; n < far; n++ {
		if !w.Check(n) {
			t.Fatalf("counter %d after a far jump refused (stale bit)", n)
		}
	}
	if w.Check(10) {
		t.Fatal("old counter accepted after far jump")
	}
	// A jump of less than a full ring must clear only what it passed.
	huge := uint64(1) << 40
	if !w.Accept(huge) || !w.Check(huge-1) || w.Check(far) {
		t.Fatal("jump to 2^40 mishandled")
	}
}

func TestReplayLimit(t *testing.T) {
	w := ReplayWindow{RejectAfter: 1000}
	if !w.Check(999) || !w.Accept(999) {
		t.Fatal("counter below the limit refused")
	}
	for _, n := range []uint64{1000, 1001, math.MaxUint64} {
		if w.Check(n) || w.Accept(n) {
			t.Fatalf("counter %d at or over the limit accepted", n)
		}
	}
	if w.last != 999 {
		t.Fatalf("refused counters moved the window to %d", w.last)
	}

	var d ReplayWindow // default limit
	if d.Check(DefaultRejectAfter) || d.Accept(math.MaxUint64) || d.Accept(DefaultRejectAfter) {
		t.Fatal("forged counter at the default limit accepted")
	}
	if d.last != 0 || !d.Check(0) {
		t.Fatal("forged counters moved the window")
	}
	if !d.Accept(DefaultRejectAfter - 1) {
		t.Fatal("last counter below the default limit refused")
	}
	d.Reset()
	if !d.Check(0) {
		t.Fatal("Reset did not empty the window")
	}
}

// TestReplayCheckPure: Check never changes the window.
func TestReplayCheckPure(t *testing.T) {
	var w ReplayWindow
	for _, n := range []uint64{3, 90, 17, 9000} {
		w.Accept(n)
	}
	before := w
	for _, n := range []uint64{0, 3, 4, 90, 8999, 9000, 9001, 1 << 20, math.MaxUint64} {
		w.Check(n)
	}
	if w != before {
		t.Fatal("Check modified the window")
	}
}

// TestReplayModel compares the window with a direct model of its
// definition over random traffic: jitter, duplicates, jumps.
func TestReplayModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := ReplayWindow{RejectAfter: 1 << 22}
	seen := map[uint64]bool{}
	var last uint64
	var next uint64
	for i := 0; i < 200000; i++ {
		var n uint64
		switch r := rng.IntN(100); {
		case r < 60:
			n = next
			next++
		case r < 85: // reordered or duplicated, up to ~1.2 windows back
			n = next - uint64(rng.IntN(ReplayWindowSize*6/5)+1)
			if n > next {
				n = 0
			}
		case r < 98: // forward jump
			next += uint64(rng.IntN(3 * ReplayWindowSize))
			n = next
		default: // over the limit now and then
			n = w.RejectAfter + uint64(rng.IntN(10))
		}
		want := n < w.RejectAfter && !seen[n] && (n > last || last-n < ReplayWindowSize)
		if got := w.Check(n); got != want {
			t.Fatalf("step %d: Check(%d) = %v, want %v (last %d)", i, n, got, want, last)
		}
		if got := w.Accept(n); got != want {
			t.Fatalf("step %d: Accept(%d) = %v, want %v (last %d)", i, n, got, want, last)
		}
		if want {
			seen[n] = true
			last = max(last, n)
		}
		if next >= w.RejectAfter {
			break
		}
	}
}

// TestReplayWindowLazyBitmap: a window holds no bitmap while the counters
// it accepted are one in-order run (a session's reserve key sets and a
// lossless path cost nothing), judges counters as a full window does, and
// gets its bitmap from the first counter that breaks the run.
func TestReplayWindowLazyBitmap(t *testing.T) {
	var w ReplayWindow
	if w.bitmap != nil {
		t.Fatal("a zero window holds a bitmap")
	}
	if !w.Check(0) || !w.Check(5) || !w.Check(ReplayWindowSize+10) {
		t.Fatal("an empty window refuses a fresh counter")
	}
	w.Reset()
	if w.bitmap != nil {
		t.Fatal("Reset of an empty window allocated a bitmap")
	}
	for n := uint64(5); n < 5+2*ReplayWindowSize; n++ {
		if !w.Check(n) || !w.Accept(n) {
			t.Fatalf("in-order counter %d refused", n)
		}
	}
	if w.bitmap != nil {
		t.Fatal("in-order counters made a bitmap")
	}
	last := uint64(4 + 2*ReplayWindowSize)
	if w.Check(last) || w.Accept(last) || w.Check(last-100) || w.Accept(5) || w.Check(last-ReplayWindowSize) {
		t.Fatal("a replay or too old counter accepted")
	}
	if w.bitmap != nil {
		t.Fatal("refused counters made a bitmap")
	}
	if allocs := testing.AllocsPerRun(100, func() { last++; w.Accept(last) }); allocs != 0 || w.bitmap != nil {
		t.Fatalf("in-order Accept: %v allocations", allocs)
	}
	// A gap breaks the run: the bitmap now holds it.
	if !w.Accept(last+2) || w.bitmap == nil {
		t.Fatal("a counter after a gap refused, or no bitmap")
	}
	if w.Check(last) || w.Check(last-ReplayWindowSize+3) || !w.Check(last+1) || w.Check(last+2) {
		t.Fatal("the bitmap does not hold the run")
	}

	// A counter below the first one also breaks the run.
	var v ReplayWindow
	if !v.Accept(5) || !v.Accept(6) || v.bitmap != nil {
		t.Fatal("first two counters")
	}
	if !v.Check(4) || !v.Accept(4) || v.bitmap == nil || v.Accept(5) || v.Accept(6) || !v.Accept(3) {
		t.Fatal("a counter below the run mishandled")
	}
}

// TestReplayRunModel checks the run form, and its move into the bitmap at
// every kind of break, against the model of TestReplayModel: many windows,
// each fed an in-order run of random length from a random start, then
// random traffic.
func TestReplayRunModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rounds := 800
	if testing.Short() || raceEnabled {
		rounds = 150
	}
	for round := 0; round < rounds; round++ {
		w := ReplayWindow{RejectAfter: 1 << 40}
		seen := map[uint64]bool{}
		var last uint64
		start := uint64(rng.IntN(3)) * uint64(rng.IntN(3*ReplayWindowSize))
		runLen := uint64(rng.IntN(4)) * uint64(rng.IntN(ReplayWindowSize*3/2))
		step := func(n uint64) {
			want := n < w.RejectAfter && !seen[n] && (n > last || last-n < ReplayWindowSize)
			if got := w.Check(n); got != want {
				t.Fatalf("round %d (start %d, run %d): Check(%d) = %v, want %v (last %d)", round, start, runLen, n, got, want, last)
			}
			if got := w.Accept(n); got != want {
				t.Fatalf("round %d (start %d, run %d): Accept(%d) = %v, want %v (last %d)", round, start, runLen, n, got, want, last)
			}
			if want {
				seen[n] = true
				last = max(last, n)
			}
		}
		for n := start; n <= start+runLen; n++ {
			step(n)
		}
		if w.bitmap != nil {
			t.Fatalf("round %d: an in-order run made a bitmap", round)
		}
		for i := 0; i < 40; i++ {
			var n uint64
			switch r := rng.IntN(10); {
			case r < 3:
				n = last + 1 + uint64(rng.IntN(3)*rng.IntN(2*ReplayWindowSize))
			case r < 6: // around the start of the run
				n = start + uint64(rng.IntN(20)) - 10
				if n > start+10 {
					n = 0
				}
			case r < 8: // around the window's edge
				n = last - ReplayWindowSize + uint64(rng.IntN(20)) - 10
				if n > last {
					n = uint64(rng.IntN(5))
				}
			default:
				n = last - uint64(rng.IntN(100))
				if n > last {
					n = 0
				}
			}
			step(n)
		}
	}
}
