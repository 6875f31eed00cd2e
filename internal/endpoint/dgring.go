package endpoint

// rxHeader is the length prefix of a datagram in an rxRing.
const rxHeader = 4

// rxRing is a channel's queue of received datagrams: each is stored whole
// and contiguous (a 4-byte length, then the bytes) in one byte ring, so
// queueing and reading allocate nothing once the ring exists. It is
// allocated on first use. A datagram that does not fit before the end of
// the buffer starts again at offset 0, and the tail it skipped is marked
// by end. Guarded by its service's mu.
type rxRing struct {
	buf        []byte
	head, tail int  // offsets of the first datagram and of the free space
	end        int  // while wrapped: where the datagrams before offset 0 end
	wrapped    bool // tail has restarted at 0, below head
	n          int  // datagrams stored
}

// reserve stores a datagram of n bytes and returns the space for its
// bytes, which the caller fills before it releases the lock; nil when
// there is no room.
func (r *rxRing) reserve(n, capacity int) []byte {
	if r.buf == nil {
		r.buf = make([]byte, capacity)
	}
	need := rxHeader + n
	at := -1
	switch {
	case r.wrapped:
		if r.tail+need <= r.head {
			at = r.tail
		}
	case r.tail+need <= len(r.buf):
		at = r.tail
	case r.n > 0 && need <= r.head:
		r.end, r.wrapped, at = r.tail, true, 0
	}
	if at < 0 {
		return nil
	}
	le32put(r.buf[at:], uint32(n))
	r.tail = at + need
	r.n++
	return r.buf[at+rxHeader : r.tail]
}

// pop copies the first datagram into p (truncating it) and drops it; it
// returns the datagram's full length. The ring must not be empty.
func (r *rxRing) pop(p []byte) int {
	n := int(le32(r.buf[r.head:]))
	copy(p, r.buf[r.head+rxHeader:r.head+rxHeader+n])
	r.head += rxHeader + n
	r.n--
	switch {
	case r.n == 0:
		r.head, r.tail, r.end, r.wrapped = 0, 0, 0, false
	case r.wrapped && r.head == r.end:
		r.head, r.end, r.wrapped = 0, 0, false
	}
	return n
}

func le32put(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// used returns the bytes the stored datagrams take, headers included.
func (r *rxRing) used() int {
	if r.wrapped {
		return r.end - r.head + r.tail
	}
	return r.tail - r.head
}

// grow moves the stored datagrams, in order, to the start of a new buffer
// of size bytes (larger than the present one), so that the ring can take
// more while its reader is behind.
func (r *rxRing) grow(size int) {
	b := make([]byte, size)
	n := 0
	if r.wrapped {
		n = copy(b, r.buf[r.head:r.end])
		n += copy(b[n:], r.buf[:r.tail])
	} else {
		n = copy(b, r.buf[r.head:r.tail])
	}
	r.buf, r.head, r.tail, r.end, r.wrapped = b, 0, n, 0, false
}
