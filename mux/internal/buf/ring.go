package buf

import "bytes"

// minRing is the size of a ring's first allocation (or its cap, if smaller).
const minRing = 4 << 10

// ring stores bytes by absolute stream offset: the byte at offset o lives
// at b[o % len(b)]. The owner guarantees that the span of live offsets never
// exceeds len(b) and that every access lies inside a span of at most len(b)
// bytes, so no two live offsets share a slot.
type ring struct {
	b []byte
}

func (r *ring) pos(off uint64) int { return int(off % uint64(len(r.b))) }

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
// (need ≤ limit ≤ 1<<30). It allocates only when the ring is too small.
func (r *ring) grow(need, limit int, lo, hi uint64) {
	if need <= len(r.b) {
		return
	}
	size := max(len(r.b), min(minRing, limit), 1)
	for size < need {
		size *= 2
	}
	size = min(size, max(limit, need))
	nb := make([]byte, size)
	if len(r.b) > 0 {
		old := r.b
		oldLen, newLen := uint64(len(old)), uint64(size)
		for off := lo; off < hi; {
			i, j := off%oldLen, off%newLen
			c := min(hi-off, oldLen-i, newLen-j)
			copy(nb[j:j+c], old[i:i+c])
			off += c
		}
	}
	r.b = nb
}

// release drops the storage for the garbage collector.
func (r *ring) release() { r.b = nil }
