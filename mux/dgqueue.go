package mux

// dgQueue is a bounded FIFO of whole datagrams, stored back to back in one
// byte ring so that queueing and sending them allocates nothing once the
// ring exists. It serves both directions: datagrams waiting to be sent
// (with fragment progress in sent) and received datagrams waiting for the
// owner. The ring is allocated on first use and dropped by free.
type dgQueue struct {
	limit int      // byte capacity
	data  []byte   // ring of datagram bytes
	start int      // ring offset of the first byte
	used  int      // bytes stored
	lens  []uint32 // ring of datagram lengths
	lh    int      // index of the first length
	ln    int      // number of datagrams
	sent  int      // bytes of the head datagram already sent as fragments
}

func (q *dgQueue) len() int { return q.ln }

// push copies p in; it reports false, storing nothing, when p does not fit.
func (q *dgQueue) push(p []byte) bool {
	if q.used+len(p) > q.limit {
		return false
	}
	if q.data == nil {
		q.data = make([]byte, q.limit)
		q.lens = make([]uint32, 16)
	}
	if q.ln == len(q.lens) {
		grown := make([]uint32, 2*len(q.lens))
		for i := 0; i < q.ln; i++ {
			grown[i] = q.lens[(q.lh+i)%len(q.lens)]
		}
		q.lens, q.lh = grown, 0
	}
	end := (q.start + q.used) % len(q.data)
	n := copy(q.data[end:], p)
	copy(q.data, p[n:])
	q.used += len(p)
	q.lens[(q.lh+q.ln)%len(q.lens)] = uint32(len(p))
	q.ln++
	return true
}

// headLen returns the length of the first datagram.
func (q *dgQueue) headLen() int { return int(q.lens[q.lh]) }

// copyHead copies bytes [off, off+len(dst)) of the first datagram to dst.
func (q *dgQueue) copyHead(dst []byte, off int) {
	at := (q.start + off) % len(q.data)
	n := copy(dst, q.data[at:])
	copy(dst[n:], q.data)
}

// pop drops the first datagram.
func (q *dgQueue) pop() {
	n := q.headLen()
	q.start = (q.start + n) % len(q.data)
	q.used -= n
	q.lh = (q.lh + 1) % len(q.lens)
	q.ln--
	q.sent = 0
	if q.ln == 0 {
		q.start = 0
	}
}

// free releases the memory; the queue stays usable.
func (q *dgQueue) free() { *q = dgQueue{limit: q.limit} }

// dgRing is the receive-side use of the same structure.
type dgRing = dgQueue
