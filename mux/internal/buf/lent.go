package buf

import (
	"bytes"
	"sync"
)

// Lent stream data: in-order STREAM data a [RecvBuffer] keeps where it
// arrived, in the received packet's buffer, instead of copying it into its
// ring. The reader then copies each byte once, from the packet to its own
// slice (docs/ARCHITECTURE.md, "In"; issue #12: the copy into the ring was
// a twentieth of the CPU of a bulk transfer at MTU 1,500, a fourteenth over
// the TCP fallback).

// Holder lends a received packet's buffer to the buffer that stores its
// data ([RecvBuffer.InsertLent]). Hold takes a reference on the buffer and
// returns it, or returns nil when the buffer may not be kept (the owner's
// budget of pinned memory is spent): the data is then copied.
type Holder interface {
	Hold() Ref
}

// Ref is a reference on a lent buffer. Release gives it back: once every
// reference is released the buffer's owner may reuse it. A Ref is
// released exactly once, from whichever goroutine runs the buffer's
// owner at the time (Read, Close, Reset). It is an alias of the interface
// literal so that package mux can name the same types in its API.
type Ref = interface {
	Release()
}

const (
	// minLend is the smallest piece of data worth lending: below it the
	// copy is cheaper than a reference, and a small message would pin a
	// whole packet buffer.
	minLend = 1024
	// maxLent is how many lent pieces one stream holds at once; beyond
	// them data is copied into the ring until the reader catches up.
	maxLent = 256
)

// lentPiece is one lent piece of a stream: data at offset off, kept alive
// by ref.
type lentPiece struct {
	off  uint64
	data []byte
	ref  Ref
}

// lentQueue is a FIFO of lent pieces covering a contiguous span of the
// stream from the read offset. Its array comes from lentPool on the first
// piece and goes back when the queue empties, so an idle stream holds none.
type lentQueue struct {
	q          *[maxLent]lentPiece
	head, n    int
	start, end uint64 // the span [start, end) the pieces cover
}

var lentPool = sync.Pool{New: func() any { return new([maxLent]lentPiece) }}

func (l *lentQueue) empty() bool { return l.n == 0 }
func (l *lentQueue) full() bool  { return l.n == maxLent }

// push appends data at offset off (= l.end unless empty) with its ref.
func (l *lentQueue) push(off uint64, data []byte, ref Ref) {
	if l.q == nil {
		l.q = lentPool.Get().(*[maxLent]lentPiece)
		l.head = 0
	}
	if l.n == 0 {
		l.start = off
	}
	// Field by field, not as a literal: see wire.MessageReader.Reset.
	e := &l.q[(l.head+l.n)%maxLent]
	e.off, e.data, e.ref = off, data, ref
	l.n++
	l.end = off + uint64(len(data))
}

// read copies the lent bytes from offset off (= l.start) into p, releases
// the pieces it finishes, and returns how many bytes it copied.
func (l *lentQueue) read(p []byte) int {
	n := 0
	for l.n > 0 && n < len(p) {
		pc := &l.q[l.head]
		c := copy(p[n:], pc.data)
		n += c
		pc.data = pc.data[c:]
		pc.off += uint64(c)
		l.start = pc.off
		if len(pc.data) == 0 {
			pc.ref.Release()
			*pc = lentPiece{}
			l.head = (l.head + 1) % maxLent
			l.n--
		}
	}
	if l.n == 0 {
		l.release()
	}
	return n
}

// equal reports whether the lent bytes at [off, off+len(p)) equal p; the
// span must lie inside [l.start, l.end).
func (l *lentQueue) equal(off uint64, p []byte) bool {
	for i := 0; i < l.n && len(p) > 0; i++ {
		pc := &l.q[(l.head+i)%maxLent]
		pend := pc.off + uint64(len(pc.data))
		if off >= pend {
			continue
		}
		k := int(off - pc.off)
		c := min(len(p), len(pc.data)-k)
		if !bytes.Equal(pc.data[k:k+c], p[:c]) {
			return false
		}
		p, off = p[c:], off+uint64(c)
	}
	return len(p) == 0
}

// release gives every piece's reference back and the array to lentPool.
func (l *lentQueue) release() {
	if l.q == nil {
		return
	}
	for ; l.n > 0; l.n-- {
		l.q[l.head].ref.Release()
		l.q[l.head] = lentPiece{}
		l.head = (l.head + 1) % maxLent
	}
	lentPool.Put(l.q)
	*l = lentQueue{}
}
