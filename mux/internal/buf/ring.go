package buf

import (
	"bytes"
	"sync"
)

// minRing is the size of a ring's first allocation (or its cap, if smaller).
const minRing = 4 << 10

// ring stores bytes by absolute stream offset: the byte at offset o lives
// at b[o % len(b)]. The owner guarantees that the span of live offsets never
// exceeds len(b) and that every access lies inside a span of at most len(b)
// bytes, so no two live offsets share a slot.
//
// The ring owns its array from grow until release (or the next grow), and
// then gives it back to the process-wide pool of its size (ringPools): a
// ring must therefore never be copied while it holds an array, and nothing
// may keep a slice of the array (no method returns one).
type ring struct {
	b []byte
}

// pos returns the index of offset off. A ring whose size is a power of
// two, as it is unless the owner's limit is not, wraps with a mask: a
// 64-bit division for every access was 1 % of a bulk transfer's CPU.
func (r *ring) pos(off uint64) int {
	n := uint64(len(r.b))
	if n&(n-1) == 0 {
		return int(off & (n - 1))
	}
	return int(off % n)
}

// put copies p to offsets [off, off+len(p)); len(p) ≤ len(r.b).
func (r *ring) put(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	n := copy(r.b[r.pos(off):], p)
	copy(r.b, p[n:])
}

// get fills dst with the bytes at [off, off+len(dst)); len(dst) ≤ len(r.b).
func (r *ring) get(dst []byte, off uint64) {
	if len(dst) == 0 {
		return
	}
	n := copy(dst, r.b[r.pos(off):])
	copy(dst[n:], r.b)
}

// appendTo appends the n bytes at [off, off+n) to dst; n ≤ len(r.b).
func (r *ring) appendTo(dst []byte, off uint64, n int) []byte {
	if n <= 0 {
		return dst
	}
	i := r.pos(off)
	first := min(n, len(r.b)-i)
	dst = append(dst, r.b[i:i+first]...)
	return append(dst, r.b[:n-first]...)
}

// equal reports whether the bytes at [off, off+len(p)) equal p.
func (r *ring) equal(off uint64, p []byte) bool {
	if len(p) == 0 {
		return true
	}
	i := r.pos(off)
	first := min(len(p), len(r.b)-i)
	return bytes.Equal(r.b[i:i+first], p[:first]) && bytes.Equal(r.b[:len(p)-first], p[first:])
}

// grow makes the ring at least need bytes long, keeping the bytes of the
// live span [lo, hi). It doubles from minRing and never exceeds limit
// (need ≤ limit ≤ 1<<30). It takes a new array only when the ring is too
// small, from the pool when one of that size is free, and gives the old
// one back.
func (r *ring) grow(need, limit int, lo, hi uint64) {
	if need <= len(r.b) {
		return
	}
	size := max(len(r.b), min(minRing, limit), 1)
	for size < need {
		size *= 2
	}
	size = min(size, max(limit, need))
	nb := getRingArray(size)
	if len(r.b) > 0 {
		old := r.b
		oldLen, newLen := uint64(len(old)), uint64(size)
		for off := lo; off < hi; {
			i, j := off%oldLen, off%newLen
			c := min(hi-off, oldLen-i, newLen-j)
			copy(nb[j:j+c], old[i:i+c])
			off += c
		}
		putRingArray(old)
	}
	r.b = nb
}

// release gives the array back; the ring is empty afterwards.
func (r *ring) release() {
	if r.b != nil {
		putRingArray(r.b)
		r.b = nil
	}
}

// abandon empties the ring without pooling its array, which goes to the
// garbage collector: for an array a slice of which is still held outside
// the owner's lock (a send buffer's open reservation, SendBuffer.Reserve).
func (r *ring) abandon() { r.b = nil }

// Ring arrays of the sizes a ring has while it is small (4 KiB to 64 KiB)
// go back to process-wide pools when their ring lets go of them, so that a
// stream that carries a short request and its answer allocates no ring
// array once the process has warmed up. A pooled array is cleared before
// it is put back: it holds no plaintext of the stream it served, and a
// ring starts zeroed whichever way it got its array. Larger arrays are
// left to the garbage collector. sync.Pool bounds the pools (they are
// emptied over two garbage collections) and makes them safe to share
// between the goroutines that run sessions.
var (
	ring4K  arrayPool[[4 << 10]byte]
	ring8K  arrayPool[[8 << 10]byte]
	ring16K arrayPool[[16 << 10]byte]
	ring32K arrayPool[[32 << 10]byte]
	ring64K arrayPool[[64 << 10]byte]
)

// arrayPool is a sync.Pool of *A. Pointers go into the pool's interface
// values without an allocation.
type arrayPool[A any] struct{ p sync.Pool }

func (p *arrayPool[A]) get() *A {
	a, _ := p.p.Get().(*A)
	return a
}

func (p *arrayPool[A]) put(a *A) { p.p.Put(a) }

// getRingArray returns a zeroed array of n bytes, from a pool if it has one.
func getRingArray(n int) []byte {
	switch n {
	case 4 << 10:
		if a := ring4K.get(); a != nil {
			return a[:]
		}
	case 8 << 10:
		if a := ring8K.get(); a != nil {
			return a[:]
		}
	case 16 << 10:
		if a := ring16K.get(); a != nil {
			return a[:]
		}
	case 32 << 10:
		if a := ring32K.get(); a != nil {
			return a[:]
		}
	case 64 << 10:
		if a := ring64K.get(); a != nil {
			return a[:]
		}
	}
	return make([]byte, n)
}

// putRingArray clears b and pools it if it has a pooled size. The caller
// gives b up: neither it nor any slice of b may be used afterwards.
func putRingArray(b []byte) {
	if len(b) != cap(b) {
		return // not an array getRingArray returned whole
	}
	switch len(b) {
	case 4 << 10:
		clear(b)
		ring4K.put((*[4 << 10]byte)(b))
	case 8 << 10:
		clear(b)
		ring8K.put((*[8 << 10]byte)(b))
	case 16 << 10:
		clear(b)
		ring16K.put((*[16 << 10]byte)(b))
	case 32 << 10:
		clear(b)
		ring32K.put((*[32 << 10]byte)(b))
	case 64 << 10:
		clear(b)
		ring64K.put((*[64 << 10]byte)(b))
	}
}
