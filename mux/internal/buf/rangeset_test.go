package buf

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

type iv = [2]uint64

func spansOf(s *RangeSet) []iv {
	out := []iv{}
	for i := 0; i < s.Len(); i++ {
		a, b := s.At(i)
		out = append(out, iv{a, b})
	}
	return out
}

func setOf(t *testing.T, max int, ivs ...iv) *RangeSet {
	t.Helper()
	s := NewRangeSet(max)
	for _, v := range ivs {
		if !s.Add(v[0], v[1]) {
			t.Fatalf("setup Add%v failed", v)
		}
	}
	return s
}

// checkInvariants: sorted, disjoint, non-adjacent, non-empty, within max.
func checkInvariants(t *testing.T, s *RangeSet) {
	t.Helper()
	if s.Len() > s.MaxRanges() {
		t.Fatalf("%d ranges > max %d", s.Len(), s.MaxRanges())
	}
	for i := 0; i < s.Len(); i++ {
		a, b := s.At(i)
		if a >= b {
			t.Fatalf("empty range %d: [%d,%d)", i, a, b)
		}
		if i > 0 {
			_, pb := s.At(i - 1)
			if pb >= a {
				t.Fatalf("ranges %d,%d overlap or touch: %v", i-1, i, spansOf(s))
			}
		}
	}
}

func TestRangeSetAdd(t *testing.T) {
	tests := []struct {
		name string
		max  int
		init []iv
		add  iv
		ok   bool
		want []iv
	}{
		{"into empty", 4, nil, iv{5, 10}, true, []iv{{5, 10}}},
		{"empty interval", 4, []iv{{1, 2}}, iv{7, 7}, true, []iv{{1, 2}}},
		{"inverted", 4, []iv{{1, 2}}, iv{9, 7}, false, []iv{{1, 2}}},
		{"disjoint below", 4, []iv{{10, 20}}, iv{1, 5}, true, []iv{{1, 5}, {10, 20}}},
		{"disjoint above", 4, []iv{{10, 20}}, iv{25, 30}, true, []iv{{10, 20}, {25, 30}}},
		{"touch left", 4, []iv{{10, 20}}, iv{5, 10}, true, []iv{{5, 20}}},
		{"touch right", 4, []iv{{10, 20}}, iv{20, 25}, true, []iv{{10, 25}}},
		{"overlap", 4, []iv{{10, 20}}, iv{15, 25}, true, []iv{{10, 25}}},
		{"inside", 4, []iv{{10, 20}}, iv{12, 13}, true, []iv{{10, 20}}},
		{"covers", 4, []iv{{10, 20}}, iv{0, 30}, true, []iv{{0, 30}}},
		{"bridges gap exactly", 4, []iv{{0, 5}, {10, 15}}, iv{5, 10}, true, []iv{{0, 15}}},
		{"merges many", 5, []iv{{0, 2}, {4, 6}, {8, 10}, {12, 14}, {20, 22}}, iv{1, 13}, true, []iv{{0, 14}, {20, 22}}},
		{"zero start", 4, []iv{{0, 3}}, iv{0, 1}, true, []iv{{0, 3}}},
		{"zero start touching", 4, []iv{{2, 3}}, iv{0, 2}, true, []iv{{0, 3}}},
		{"full refuses new", 2, []iv{{0, 2}, {10, 12}}, iv{5, 6}, false, []iv{{0, 2}, {10, 12}}},
		{"full accepts merge", 2, []iv{{0, 2}, {10, 12}}, iv{2, 6}, true, []iv{{0, 6}, {10, 12}}},
		{"full accepts bridge", 2, []iv{{0, 2}, {10, 12}}, iv{2, 10}, true, []iv{{0, 12}}},
		{"near max uint64", 4, []iv{{math.MaxUint64 - 5, math.MaxUint64}}, iv{math.MaxUint64 - 10, math.MaxUint64 - 5}, true, []iv{{math.MaxUint64 - 10, math.MaxUint64}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := setOf(t, tt.max, tt.init...)
			if got := s.Add(tt.add[0], tt.add[1]); got != tt.ok {
				t.Errorf("Add%v = %v, want %v", tt.add, got, tt.ok)
			}
			if got := spansOf(s); !slices.Equal(got, tt.want) {
				t.Errorf("set = %v, want %v", got, tt.want)
			}
			checkInvariants(t, s)
		})
	}
}

func TestRangeSetRemove(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		init    []iv
		rm      iv
		want    []iv
		dropped bool
		drop    iv
	}{
		{"nothing", 4, []iv{{10, 20}}, iv{0, 5}, []iv{{10, 20}}, false, iv{}},
		{"empty interval", 4, []iv{{10, 20}}, iv{15, 15}, []iv{{10, 20}}, false, iv{}},
		{"inverted", 4, []iv{{10, 20}}, iv{18, 12}, []iv{{10, 20}}, false, iv{}},
		{"whole", 4, []iv{{10, 20}}, iv{10, 20}, []iv{}, false, iv{}},
		{"prefix", 4, []iv{{10, 20}}, iv{5, 12}, []iv{{12, 20}}, false, iv{}},
		{"suffix", 4, []iv{{10, 20}}, iv{18, 30}, []iv{{10, 18}}, false, iv{}},
		{"split", 4, []iv{{10, 20}}, iv{12, 15}, []iv{{10, 12}, {15, 20}}, false, iv{}},
		{"touching only", 4, []iv{{10, 20}}, iv{20, 30}, []iv{{10, 20}}, false, iv{}},
		{"across several", 4, []iv{{0, 5}, {10, 15}, {20, 25}}, iv{3, 22}, []iv{{0, 3}, {22, 25}}, false, iv{}},
		{"split full drops lowest", 2, []iv{{0, 5}, {10, 20}}, iv{12, 15}, []iv{{10, 12}, {15, 20}}, true, iv{0, 5}},
		{"split full, lowest is split", 2, []iv{{10, 20}, {30, 40}}, iv{12, 15}, []iv{{15, 20}, {30, 40}}, true, iv{10, 12}},
		{"split max 1", 1, []iv{{10, 20}}, iv{12, 15}, []iv{{15, 20}}, true, iv{10, 12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := setOf(t, tt.max, tt.init...)
			a, b, d := s.Remove(tt.rm[0], tt.rm[1])
			if d != tt.dropped || (d && (iv{a, b}) != tt.drop) {
				t.Errorf("Remove%v dropped (%d,%d,%v), want (%v,%v)", tt.rm, a, b, d, tt.drop, tt.dropped)
			}
			if got := spansOf(s); !slices.Equal(got, tt.want) {
				t.Errorf("set = %v, want %v", got, tt.want)
			}
			checkInvariants(t, s)
		})
	}
}

func TestRangeSetQueries(t *testing.T) {
	s := setOf(t, 8, iv{2, 5}, iv{10, 20}, iv{30, 31})
	for _, c := range []struct {
		x  uint64
		in bool
	}{{0, false}, {1, false}, {2, true}, {4, true}, {5, false}, {9, false}, {10, true}, {19, true}, {20, false}, {30, true}, {31, false}, {math.MaxUint64, false}} {
		if got := s.Contains(c.x); got != c.in {
			t.Errorf("Contains(%d) = %v", c.x, got)
		}
	}
	for _, c := range []struct {
		a, b uint64
		in   bool
	}{{2, 5, true}, {3, 4, true}, {2, 6, false}, {1, 3, false}, {4, 11, false}, {10, 20, true}, {7, 7, true}, {8, 7, false}, {30, 31, true}, {31, 32, false}} {
		if got := s.ContainsRange(c.a, c.b); got != c.in {
			t.Errorf("ContainsRange(%d,%d) = %v", c.a, c.b, got)
		}
	}
	if v, ok := s.Min(); v != 2 || !ok {
		t.Errorf("Min = %d,%v", v, ok)
	}
	if v, ok := s.Max(); v != 31 || !ok {
		t.Errorf("Max = %d,%v", v, ok)
	}
	if a, b := s.At(-1); a != 0 || b != 0 {
		t.Errorf("At(-1) = %d,%d", a, b)
	}
	if a, b := s.At(3); a != 0 || b != 0 {
		t.Errorf("At(3) = %d,%d", a, b)
	}
	s.RemoveBelow(12)
	if got := spansOf(s); !slices.Equal(got, []iv{{12, 20}, {30, 31}}) {
		t.Errorf("RemoveBelow(12) = %v", got)
	}
	s.RemoveBelow(20)
	if got := spansOf(s); !slices.Equal(got, []iv{{30, 31}}) {
		t.Errorf("RemoveBelow(20) = %v", got)
	}
	s.Clear()
	if s.Len() != 0 {
		t.Error("Clear left ranges")
	}
	if _, ok := s.Min(); ok {
		t.Error("Min of empty set ok")
	}
	if _, ok := s.Max(); ok {
		t.Error("Max of empty set ok")
	}
	var zero RangeSet
	if zero.Add(1, 2) || !zero.Add(1, 1) || zero.Contains(1) || zero.Len() != 0 {
		t.Error("zero RangeSet misbehaves")
	}
	zero.Remove(0, 10)
	zero.RemoveBelow(5)
	zero.addCoalesce(1, 2)
	if NewRangeSet(-3).MaxRanges() != 1 || NewRangeSet(1<<30).MaxRanges() != MaxRangesLimit {
		t.Error("maxRanges not clamped")
	}
}

func TestRangeSetAddCoalesce(t *testing.T) {
	s := setOf(t, 2, iv{0, 10}, iv{100, 110})
	s.addCoalesce(20, 30) // nearer to [0,10)
	if got := spansOf(s); !slices.Equal(got, []iv{{0, 30}, {100, 110}}) {
		t.Errorf("got %v", got)
	}
	s.addCoalesce(80, 90) // nearer to [100,110)
	if got := spansOf(s); !slices.Equal(got, []iv{{0, 30}, {80, 110}}) {
		t.Errorf("got %v", got)
	}
	s.addCoalesce(200, 210)
	s.addCoalesce(40, 41)
	want := []iv{{0, 41}, {80, 210}}
	if got := spansOf(s); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// refSet is the reference model: a bitmap over a small universe.
type refSet [96]bool

func (r *refSet) spans() []iv {
	out := []iv{}
	for i := 0; i < len(r); i++ {
		if r[i] && (i == 0 || !r[i-1]) {
			j := i
			for j < len(r) && r[j] {
				j++
			}
			out = append(out, iv{uint64(i), uint64(j)})
		}
	}
	return out
}

func (r *refSet) set(a, b uint64, v bool) {
	for i := a; i < b; i++ {
		r[i] = v
	}
}

// TestRangeSetProperty runs random operations on a RangeSet and a bitmap
// and compares them after each step.
func TestRangeSetProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const U = uint64(len(refSet{}))
	for round := 0; round < 200; round++ {
		max := 1 + rng.IntN(6)
		s := NewRangeSet(max)
		var ref refSet
		for step := 0; step < 300; step++ {
			a, b := rng.Uint64N(U+1), rng.Uint64N(U+1)
			if rng.IntN(8) != 0 && a > b {
				a, b = b, a
			}
			before := spansOf(s)
			switch op := rng.IntN(10); {
			case op < 5:
				next := ref
				if a < b {
					next.set(a, b, true)
				}
				fits := a <= b && len(next.spans()) <= max
				if got := s.Add(a, b); got != fits {
					t.Fatalf("round %d step %d: Add(%d,%d) on %v = %v, want %v", round, step, a, b, before, got, fits)
				}
				if fits {
					ref = next
				}
			case op < 9:
				next := ref
				if a < b {
					next.set(a, b, false)
				}
				sp := next.spans()
				var wantDrop iv
				drop := len(sp) > max
				if drop {
					wantDrop = sp[0]
					next.set(sp[0][0], sp[0][1], false)
				}
				da, db, d := s.Remove(a, b)
				if d != drop || (d && (iv{da, db}) != wantDrop) {
					t.Fatalf("round %d step %d: Remove(%d,%d) on %v dropped (%d,%d,%v), want %v %v", round, step, a, b, before, da, db, d, wantDrop, drop)
				}
				ref = next
			default:
				s.RemoveBelow(a)
				ref.set(0, a, false)
			}
			checkInvariants(t, s)
			if got, want := spansOf(s), ref.spans(); !slices.Equal(got, want) {
				t.Fatalf("round %d step %d: set %v, reference %v", round, step, got, want)
			}
			x := rng.Uint64N(U)
			if s.Contains(x) != ref[x] {
				t.Fatalf("Contains(%d) disagrees", x)
			}
			c, d := rng.Uint64N(U), rng.Uint64N(U+1)
			if c <= d {
				want := true
				for i := c; i < d; i++ {
					want = want && ref[i]
				}
				if s.ContainsRange(c, d) != want {
					t.Fatalf("ContainsRange(%d,%d) disagrees on %v", c, d, spansOf(s))
				}
			}
		}
	}
}

func TestRangeSetAllocs(t *testing.T) {
	s := NewRangeSet(64)
	var i uint64
	allocs := testing.AllocsPerRun(1000, func() {
		base := i * 100
		s.Add(base+10, base+20)
		s.Add(base+30, base+40)
		s.Add(base+20, base+30)
		s.Remove(base+12, base+14)
		s.Contains(base + 13)
		if base > 3000 {
			s.RemoveBelow(base - 3000)
		}
		if s.Len() >= 60 {
			s.Clear()
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("RangeSet Add/Remove: %v allocations per run, want 0", allocs)
	}
}

// TestRangeSetGrowsOnDemand: a set holds an array for the intervals it
// has needed, not for its maximum, and once grown it allocates no more.
func TestRangeSetGrowsOnDemand(t *testing.T) {
	s := NewRangeSet(64)
	if cap(s.r) != 0 {
		t.Fatalf("a new set holds room for %d intervals, want 0", cap(s.r))
	}
	for pn := uint64(0); pn < 1000; pn++ {
		s.Add(pn, pn+1) // consecutive: one interval
	}
	if s.Len() != 1 || cap(s.r) > minRangeCap {
		t.Fatalf("one interval in an array of %d, want at most %d", cap(s.r), minRangeCap)
	}
	for i := uint64(0); i < 64; i++ {
		if !s.Add(2000+2*i, 2001+2*i) && s.Len() < 64 {
			t.Fatalf("Add failed with %d of 64 intervals", s.Len())
		}
	}
	if s.Len() != 64 || cap(s.r) != 64 {
		t.Fatalf("%d intervals in an array of %d, want 64 and 64", s.Len(), cap(s.r))
	}
	if s.Add(5000, 5001) {
		t.Fatal("Add beyond the maximum succeeded")
	}
	allocs := testing.AllocsPerRun(100, func() {
		s.Remove(2000, 2001)
		s.Add(2000, 2001)
	})
	if allocs != 0 {
		t.Fatalf("a grown set allocates %v times per Remove+Add", allocs)
	}
}

// TestRangeSetInitInline: a set with inline room holds its first two
// intervals there without allocating, and grows past them like any set.
func TestRangeSetInitInline(t *testing.T) {
	var first InlineRanges
	var s RangeSet
	s.InitInline(8, &first)
	if n := testing.AllocsPerRun(100, func() {
		s.Clear()
		s.Add(10, 20)
		s.Add(30, 40)
		s.Add(20, 30) // merges into one
		s.Add(50, 60)
	}); n != 0 {
		t.Fatalf("%v allocations for two intervals, want 0", n)
	}
	if s.Len() != 2 || &s.r[0] != &first[0] {
		t.Fatalf("set %v does not use its inline room", s.r)
	}
	for i := uint64(0); i < 10; i++ {
		s.Add(100+10*i, 105+10*i)
	}
	if s.Len() != 8 || s.MaxRanges() != 8 {
		t.Fatalf("set of %d intervals (max %d), want 8", s.Len(), s.MaxRanges())
	}
	if a, b := s.At(0); a != 10 || b != 40 {
		t.Fatalf("lowest interval [%d, %d) after growing, want [10, 40)", a, b)
	}
	if !s.Contains(35) || s.Contains(45) {
		t.Fatal("membership wrong after growing")
	}
}
