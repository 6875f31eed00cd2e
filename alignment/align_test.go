package alignment

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// allAligns are the wire alignments plus the pool's, since Up and Pad
// accept any power of two.
var allAligns = []int{1, 2, 4, 8, 16, 32, 64}

// slowUp is the obviously correct reference: count up to a multiple.
func slowUp(n, a int) int {
	for n%a != 0 {
		n++
	}
	return n
}

func TestValid(t *testing.T) {
	want := map[int]bool{1: true, 2: true, 4: true, 8: true, 16: true}
	for a := -20; a <= 200; a++ {
		if got := Valid(a); got != want[a] {
			t.Errorf("Valid(%d) = %v, want %v", a, got, want[a])
		}
	}
	for _, a := range []int{math.MinInt, math.MaxInt, 1 << 40} {
		if Valid(a) {
			t.Errorf("Valid(%d) = true", a)
		}
	}
}

func TestUpPadAgainstReference(t *testing.T) {
	for _, a := range allAligns {
		for n := -3 * 64; n <= 4*64; n++ {
			want := slowUp(n, a)
			if got := Up(n, a); got != want {
				t.Fatalf("Up(%d, %d) = %d, want %d", n, a, got, want)
			}
			p := Pad(n, a)
			if p != want-n {
				t.Fatalf("Pad(%d, %d) = %d, want %d", n, a, p, want-n)
			}
			if p < 0 || p >= a {
				t.Fatalf("Pad(%d, %d) = %d, out of [0, %d)", n, a, p, a)
			}
		}
	}
}

func TestUpPadBoundaries(t *testing.T) {
	tests := []struct{ n, a, up, pad int }{
		{0, 1, 0, 0},
		{1, 1, 1, 0},
		{0, 16, 0, 0},
		{1, 2, 2, 1},
		{2, 2, 2, 0},
		{3, 2, 4, 1},
		{3, 4, 4, 1},
		{4, 4, 4, 0},
		{5, 4, 8, 3},
		{7, 8, 8, 1},
		{8, 8, 8, 0},
		{9, 8, 16, 7},
		{15, 16, 16, 1},
		{16, 16, 16, 0},
		{17, 16, 32, 15},
		{40, 16, 48, 8}, // a 40-byte header, then the first message
		{40, 8, 40, 0},
		{1452, 16, 1456, 4},
		{-1, 4, 0, 1},
		{-4, 4, -4, 0},
		{-5, 4, -4, 1},
		{math.MaxInt, 1, math.MaxInt, 0},
		{math.MaxInt - 15, 16, math.MaxInt - 15, 0},
		{math.MinInt, 16, math.MinInt, 0},
		{math.MinInt + 1, 16, math.MinInt + 16, 15},
	}
	for _, tt := range tests {
		if got := Up(tt.n, tt.a); got != tt.up {
			t.Errorf("Up(%d, %d) = %d, want %d", tt.n, tt.a, got, tt.up)
		}
		if got := Pad(tt.n, tt.a); got != tt.pad {
			t.Errorf("Pad(%d, %d) = %d, want %d", tt.n, tt.a, got, tt.pad)
		}
	}
}

func mustPanic(t *testing.T, substr string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("no panic, want one containing %q", substr)
			return
		}
		var msg string
		switch v := r.(type) {
		case string:
			msg = v
		case error:
			msg = v.Error()
		}
		if !strings.Contains(msg, substr) {
			t.Errorf("panic %v, want one containing %q", r, substr)
		}
	}()
	f()
}

func TestUpOverflowPanics(t *testing.T) {
	for _, a := range []int{2, 16, 64} {
		// The largest multiple of a still works; one more overflows.
		top := math.MaxInt &^ (a - 1)
		if got := Up(top, a); got != top {
			t.Errorf("Up(%d, %d) = %d, want %d", top, a, got, top)
		}
		mustPanic(t, "overflows", func() { Up(top+1, a) })
		mustPanic(t, "overflows", func() { Up(math.MaxInt, a) })
		// Pad has no result to overflow.
		if got := Pad(math.MaxInt, a); got != 1 {
			t.Errorf("Pad(MaxInt, %d) = %d, want 1", a, got)
		}
	}
}

func TestInvalidAlignPanics(t *testing.T) {
	for _, a := range []int{0, -1, -2, -16, 3, 5, 6, 12, 24, 48, math.MinInt, math.MaxInt} {
		mustPanic(t, "not a power of two", func() { Up(10, a) })
		mustPanic(t, "not a power of two", func() { Pad(10, a) })
	}
}

func TestLog2(t *testing.T) {
	for l := uint8(0); l <= MaxLog2; l++ {
		a, ok := FromLog2(l)
		if !ok || a != 1<<l {
			t.Fatalf("FromLog2(%d) = %d, %v", l, a, ok)
		}
		back, ok := Log2(a)
		if !ok || back != l {
			t.Fatalf("Log2(%d) = %d, %v, want %d", a, back, ok, l)
		}
	}
	for l := MaxLog2 + 1; l <= math.MaxUint8; l++ {
		if a, ok := FromLog2(uint8(l)); ok || a != 0 {
			t.Errorf("FromLog2(%d) = %d, %v, want 0, false", l, a, ok)
		}
	}
	for _, a := range []int{0, -1, 3, 32, 64, math.MinInt} {
		if l, ok := Log2(a); ok || l != 0 {
			t.Errorf("Log2(%d) = %d, %v, want 0, false", a, l, ok)
		}
	}
	if got, _ := Log2(MaxAlign); got != MaxLog2 {
		t.Errorf("Log2(MaxAlign) = %d, want MaxLog2", got)
	}
}

func TestNewBucketsValidation(t *testing.T) {
	bad := [][]int{
		{0},
		{-64},
		{64, 0},
		{64, 64},
		{128, 64},
		{64, 128, 128, 256},
		{64, 256, 128},
	}
	for _, sizes := range bad {
		if _, err := NewBuckets(sizes...); err == nil {
			t.Errorf("NewBuckets(%v) succeeded, want error", sizes)
		}
	}
	good := [][]int{{1}, {64, 65}, {64, 128, 256, 512, 1024, 1280, 1452}}
	for _, sizes := range good {
		b, err := NewBuckets(sizes...)
		if err != nil {
			t.Errorf("NewBuckets(%v): %v", sizes, err)
			continue
		}
		if !slices.Equal(b.Sizes(), sizes) {
			t.Errorf("NewBuckets(%v).Sizes() = %v", sizes, b.Sizes())
		}
		if b.Largest() != sizes[len(sizes)-1] {
			t.Errorf("NewBuckets(%v).Largest() = %d", sizes, b.Largest())
		}
	}
	empty, err := NewBuckets()
	if err != nil || len(empty.Sizes()) != 0 || empty.Largest() != 0 {
		t.Errorf("NewBuckets() = %v, %v; want empty Buckets", empty.Sizes(), err)
	}
}

func TestBucketsCopySemantics(t *testing.T) {
	in := []int{64, 128}
	b, err := NewBuckets(in...)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = 1000 // the caller reuses its slice
	out := b.Sizes()
	out[1] = 5 // and scribbles on the copy it was given
	if got := b.Sizes(); !slices.Equal(got, []int{64, 128}) {
		t.Errorf("Buckets changed through an alias: %v", got)
	}
}

func TestDefaultBuckets(t *testing.T) {
	want := []int{64, 128, 256, 512, 1024, 1280, 1452}
	if got := DefaultBuckets.Sizes(); !slices.Equal(got, want) {
		t.Errorf("DefaultBuckets = %v, want %v", got, want)
	}
}

func TestBucketsSize(t *testing.T) {
	b := DefaultBuckets
	tests := []struct{ n, want int }{
		{-1, 64},
		{0, 64},
		{1, 64},
		{63, 64},
		{64, 64}, // exactly at a bucket
		{65, 128},
		{100, 128}, // between buckets
		{128, 128},
		{1024, 1024},
		{1025, 1280},
		{1280, 1280},
		{1281, 1452},
		{1452, 1452}, // the largest bucket
		{1453, 1453}, // above it: unchanged, never shrunk
		{9000, 9000},
	}
	for _, tt := range tests {
		if got := b.Size(tt.n); got != tt.want {
			t.Errorf("Size(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// TestBucketsSizeProperties checks Size against its definition for every
// length up to well past the largest bucket.
func TestBucketsSizeProperties(t *testing.T) {
	b := DefaultBuckets
	sizes := b.Sizes()
	prev := 0
	for n := 0; n <= 2000; n++ {
		got := b.Size(n)
		if got < n {
			t.Fatalf("Size(%d) = %d shrinks", n, got)
		}
		if got < prev {
			t.Fatalf("Size(%d) = %d < Size(%d) = %d: not monotone", n, got, n-1, prev)
		}
		prev = got
		isBucket := slices.Contains(sizes, got)
		if n <= b.Largest() {
			if !isBucket {
				t.Fatalf("Size(%d) = %d is not a bucket", n, got)
			}
			for _, s := range sizes {
				if s >= n && s < got {
					t.Fatalf("Size(%d) = %d, but bucket %d is smaller and fits", n, got, s)
				}
			}
		} else if got != n {
			t.Fatalf("Size(%d) = %d above the largest bucket, want %d", n, got, n)
		}
	}
}

func TestZeroBuckets(t *testing.T) {
	var b Buckets
	for _, n := range []int{0, 1, 64, 1500, 70000} {
		if got := b.Size(n); got != n {
			t.Errorf("zero Buckets Size(%d) = %d", n, got)
		}
		if got := b.SizeWithin(n, 1452); got != n {
			t.Errorf("zero Buckets SizeWithin(%d, 1452) = %d", n, got)
		}
	}
}

func TestBucketsSizeWithin(t *testing.T) {
	b := DefaultBuckets
	tests := []struct{ n, limit, want int }{
		// A limit at the largest bucket behaves like Size up to it.
		{0, 1452, 64},
		{65, 1452, 128},
		{1300, 1452, 1452},
		{1452, 1452, 1452},
		{1453, 1452, 1453}, // already oversize: unchanged, not shrunk
		// A limit between buckets caps the padding at the limit.
		{1000, 1400, 1024},
		{1025, 1400, 1280},
		{1281, 1400, 1400},
		{1399, 1400, 1400},
		{1400, 1400, 1400},
		{1401, 1400, 1401},
		// A limit below the first bucket.
		{10, 50, 50},
		{50, 50, 50},
		{51, 50, 51},
		// A limit above the largest bucket adds nothing beyond it.
		{1460, 1472, 1460},
		{1452, 1472, 1452},
	}
	for _, tt := range tests {
		if got := b.SizeWithin(tt.n, tt.limit); got != tt.want {
			t.Errorf("SizeWithin(%d, %d) = %d, want %d", tt.n, tt.limit, got, tt.want)
		}
	}
}

func TestBucketsSizeWithinProperties(t *testing.T) {
	b := DefaultBuckets
	for _, limit := range []int{0, 1, 63, 64, 100, 1232, 1280, 1400, 1452, 1500} {
		for n := 0; n <= 1600; n++ {
			got := b.SizeWithin(n, limit)
			if got < n {
				t.Fatalf("SizeWithin(%d, %d) = %d shrinks", n, limit, got)
			}
			if n <= limit && got > limit {
				t.Fatalf("SizeWithin(%d, %d) = %d exceeds the limit", n, limit, got)
			}
			if n > limit && got != n {
				t.Fatalf("SizeWithin(%d, %d) = %d, want oversize n unchanged", n, limit, got)
			}
			if got != b.Size(n) && got != limit && got != n {
				t.Fatalf("SizeWithin(%d, %d) = %d: neither bucket, limit nor n", n, limit, got)
			}
		}
	}
}

func BenchmarkUp(b *testing.B) {
	s, a := 0, 16
	for i := range b.N {
		s += Up(i, a)
	}
	sink = s
}

var sink int
