// Package alignment holds the two pieces of size arithmetic the packet path
// shares: where bytes go on the wire, and where packets live in memory.
//
// Wire layout. Message bodies inside a packet start at a multiple of the
// connection's alignment (1, 2, 4, 8 or 16 bytes, fixed at the handshake
// and carried on the wire as its log2, 0..4); [Up] and [Pad] compute the
// offsets and padding. Whole packets may additionally be padded up to the
// next size in a [Buckets] list so that their lengths reveal less about
// their contents; [Buckets.SizeWithin] does that without ever exceeding the
// path's maximum packet size.
//
// Memory. A [Pool] hands out packet buffers from a few size classes (one
// MTU-sized packet, one maximal UDP datagram or GSO batch). Every buffer
// starts on a [BufferAlign] (64-byte, cache-line) boundary, which also
// satisfies every wire alignment; free buffers are bounded per class, and
// Get/Put do not allocate once the pool is warm.
//
// The package is standard library only and has no goroutines or clocks.
package alignment

import (
	"fmt"
	"math"
	"math/bits"
)

// MaxAlign is the largest wire alignment and MaxLog2 its log2, the largest
// value the wire's alignment field may carry.
const (
	MaxAlign = 16
	MaxLog2  = 4
)

// Valid reports whether a is an alignment the wire allows: 1, 2, 4, 8 or 16.
func Valid(a int) bool {
	return a >= 1 && a <= MaxAlign && a&(a-1) == 0
}

// Up returns the smallest multiple of a that is >= n.
//
// a may be any power of two >= 1 (not only the wire alignments; the pool
// uses 64). Any other a is a programmer error and panics: callers validate
// the alignment once, at the handshake, with [Valid] or [FromLog2].
//
// Up is defined for every n whose result fits in an int. Negative n round
// toward +infinity like any other (Up(-5, 4) == -4), although lengths are
// never negative in practice. If the result would exceed math.MaxInt, Up
// panics instead of wrapping to a negative length.
func Up(n, a int) int {
	m := a - 1
	if a <= 0 || a&m != 0 {
		panic(badAlign(a))
	}
	if n > math.MaxInt-m {
		panic(overflow{n, a})
	}
	return (n + m) &^ m
}

// Pad returns the number of bytes (0 <= Pad < a) that must follow n bytes
// to reach the next multiple of a: Up(n, a) - n. a must be a power of two
// >= 1, as for [Up]. Unlike Up, Pad never overflows.
func Pad(n, a int) int {
	m := a - 1
	if a <= 0 || a&m != 0 {
		panic(badAlign(a))
	}
	return -n & m
}

// badAlign and overflow are the panic values of Up and Pad. They are
// errors rather than formatted strings so that the checks stay cheap
// enough for Up and Pad to be inlined.
type (
	badAlign int
	overflow struct{ n, a int }
)

func (e badAlign) Error() string {
	return fmt.Sprintf("alignment: %d is not a power of two >= 1", int(e))
}

func (e overflow) Error() string {
	return fmt.Sprintf("alignment: Up(%d, %d) overflows int", e.n, e.a)
}

// Log2 returns the wire encoding of alignment a (log2 a, 0..MaxLog2).
// ok is false if a is not [Valid].
func Log2(a int) (l uint8, ok bool) {
	if !Valid(a) {
		return 0, false
	}
	return uint8(bits.TrailingZeros(uint(a))), true
}

// FromLog2 decodes the wire's alignment field. ok is false for l > MaxLog2,
// which a receiver must treat as a malformed handshake.
func FromLog2(l uint8) (a int, ok bool) {
	if l > MaxLog2 {
		return 0, false
	}
	return 1 << l, true
}

// Buckets is an ascending list of packet sizes that packets are padded up
// to, so an observer learns only which bucket a packet fell into.
//
// The zero value has no buckets and pads nothing. Build other values with
// [NewBuckets]; the list is unexported so a Buckets value is always valid
// and is safe to share between goroutines.
type Buckets struct {
	sizes []int // > 0, strictly increasing; never modified after NewBuckets
}

// DefaultBuckets are UDP payload sizes from tiny control packets up to
// 1452 bytes, the largest payload of a 1500-byte-MTU IPv6 path
// (1500 - 40 IPv6 - 8 UDP). 1280 is the IPv6 minimum link MTU.
var DefaultBuckets = mustBuckets(64, 128, 256, 512, 1024, 1280, 1452)

// NewBuckets validates sizes (each > 0, strictly increasing) and returns
// them as Buckets. It copies sizes, so the caller may reuse the slice. An
// empty list is allowed and yields the zero Buckets (no padding).
func NewBuckets(sizes ...int) (Buckets, error) {
	for i, s := range sizes {
		if s <= 0 {
			return Buckets{}, fmt.Errorf("alignment: bucket %d is %d, want > 0", i, s)
		}
		if i > 0 && s <= sizes[i-1] {
			return Buckets{}, fmt.Errorf("alignment: bucket %d (%d) is not larger than bucket %d (%d)", i, s, i-1, sizes[i-1])
		}
	}
	if len(sizes) == 0 {
		return Buckets{}, nil
	}
	return Buckets{sizes: append([]int(nil), sizes...)}, nil
}

func mustBuckets(sizes ...int) Buckets {
	b, err := NewBuckets(sizes...)
	if err != nil {
		panic(err)
	}
	return b
}

// Sizes returns a copy of the bucket sizes, ascending.
func (b Buckets) Sizes() []int {
	return append([]int(nil), b.sizes...)
}

// Largest returns the largest bucket, or 0 if there are none.
func (b Buckets) Largest() int {
	if len(b.sizes) == 0 {
		return 0
	}
	return b.sizes[len(b.sizes)-1]
}

// Size returns the smallest bucket >= n, or n itself when n is larger than
// every bucket: a packet is never shrunk. It does not know the path's
// maximum packet size; use [Buckets.SizeWithin] when padding real packets.
func (b Buckets) Size(n int) int {
	// The list is a handful of entries; a linear scan beats a binary
	// search at this size and never allocates.
	for _, s := range b.sizes {
		if s >= n {
			return s
		}
	}
	return n
}

// SizeWithin returns the length to pad an n-byte packet to when no packet
// may exceed limit bytes (the path's maximum UDP payload):
//
//	max(n, min(b.Size(n), limit))
//
// So it pads to the next bucket when that fits, pads only up to limit when
// the next bucket would not, never shrinks, and never adds padding beyond
// limit. If n itself exceeds limit, n is returned unchanged: the packet is
// already too big, and rejecting it is the caller's decision, not a
// padding one.
func (b Buckets) SizeWithin(n, limit int) int {
	s := b.Size(n)
	if s > limit {
		s = limit
	}
	if s < n {
		s = n
	}
	return s
}
