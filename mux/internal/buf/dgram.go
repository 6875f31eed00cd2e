package buf

import (
	"bytes"
	"time"
)

// DefaultReassemblyTimeout is the timeout of a [Reassembler] constructed
// with a timeout ≤ 0.
const DefaultReassemblyTimeout = 3 * time.Second

const (
	minClassShift = 10 // smallest reassembly buffer: 1 KiB
	numClasses    = 7  // 1 KiB … 64 KiB, which holds MaxDatagramSize
	maxPendingCap = 4096
	fragRanges    = 64 // intervals per datagram: far more than the ≤ 57 fragments of a legitimate one
	retiredLen    = 32 // recently finished sequence numbers remembered
)

// ReassemblerStats counts what a [Reassembler] did with datagrams.
type ReassemblerStats struct {
	Completed uint64 // datagrams delivered
	Expired   uint64 // partial datagrams dropped by Expire
	Evicted   uint64 // partial datagrams dropped to make room
	Rejected  uint64 // fragments or datagrams refused with an error
	Late      uint64 // fragments of a recently finished datagram, ignored
}

// Reassembler rebuilds fragmented datagrams of one datagram channel
// (PROTOCOL.md §5.9), all or nothing: a datagram is delivered once every
// byte of [0, total) has arrived, and a partial datagram is dropped when it
// is older than the timeout or when room is needed, oldest first.
//
// Memory is bounded by maxBytes, which counts the buffers the reassembler
// holds (partial datagrams, the last delivered datagram and a free list of
// buffers kept for reuse). Buffers come in power-of-two classes from 1 KiB
// to 64 KiB, so a datagram of total bytes costs total rounded up to a
// class, and maxBytes must be at least 64 KiB to accept every size. At
// most maxPending datagrams are partial at once. Once the free list is
// warm, Add allocates nothing.
//
// Fragments of a datagram that was recently completed or dropped are
// ignored, so a datagram is delivered at most once and a dropped one does
// not come back half-built.
//
// Non-fragmented datagrams do not need a Reassembler.
type Reassembler struct {
	maxBytes int
	timeout  time.Duration
	held     int // bytes of every buffer held: pending, lent and free

	pending []*partial // oldest first; cap maxPending
	spare   []*partial // recycled partial structs
	free    [numClasses][][]byte
	lent    []byte // the datagram returned by the last Add

	retired  [retiredLen]uint32
	nRetired int
	next     int

	stats ReassemblerStats
}

type partial struct {
	seq   uint32
	first time.Time
	buf   []byte // len total, cap a class size
	got   RangeSet
}

// NewReassembler returns a reassembler holding at most maxBytes of buffers
// (at least 0) and at most maxPending partial datagrams (clamped to
// [1, 4096]), which drops partial datagrams older than timeout
// (DefaultReassemblyTimeout if ≤ 0).
func NewReassembler(maxBytes, maxPending int, timeout time.Duration) *Reassembler {
	if timeout <= 0 {
		timeout = DefaultReassemblyTimeout
	}
	n := min(max(maxPending, 1), maxPendingCap)
	return &Reassembler{
		maxBytes: max(maxBytes, 0),
		timeout:  timeout,
		pending:  make([]*partial, 0, n),
		spare:    make([]*partial, 0, n),
	}
}

// Stats returns the counters.
func (r *Reassembler) Stats() ReassemblerStats { return r.stats }

// Pending returns the number of partial datagrams.
func (r *Reassembler) Pending() int { return len(r.pending) }

// HeldBytes returns the bytes of buffers held, at most maxBytes.
func (r *Reassembler) HeldBytes() int { return r.held }

// Add takes one fragment: data at offset of the datagram seq, whose size is
// total. When the fragment completes the datagram, Add returns it with ok.
// The datagram is read-only and valid only until the next Add, Expire or
// Release (it aliases r's buffer, or data itself when one fragment carries
// the whole datagram); the engine copies it out or hands it on before
// then.
//
// Errors report a fragment or datagram refused, for statistics; the
// engine drops it and goes on. [ErrDatagramTooLarge]: total above
// MaxDatagramSize, or too large for maxBytes. [ErrBadFragment]: empty data,
// data past total, or a total different from earlier fragments (the
// partial datagram is dropped). [ErrFragmentMismatch]: overlapping bytes
// differ from earlier fragments (dropped). [ErrTooFragmented]: more than
// 64 disjoint pieces (dropped).
func (r *Reassembler) Add(seq, total, offset uint32, data []byte, now time.Time) (datagram []byte, ok bool, err error) {
	r.recycleLent()
	end := uint64(offset) + uint64(len(data))
	switch {
	case total > MaxDatagramSize:
		r.stats.Rejected++
		return nil, false, ErrDatagramTooLarge
	case len(data) == 0 || end > uint64(total):
		r.stats.Rejected++
		return nil, false, ErrBadFragment
	case r.isRetired(seq):
		r.stats.Late++
		return nil, false, nil
	}
	i := r.find(seq)
	if i < 0 {
		if offset == 0 && len(data) == int(total) {
			r.stats.Completed++
			r.retire(seq)
			return data, true, nil
		}
		if classSize(int(total)) > r.maxBytes {
			r.stats.Rejected++
			return nil, false, ErrDatagramTooLarge
		}
		if len(r.pending) == cap(r.pending) {
			r.evictOldest()
		}
		buf, ok := r.acquire(int(total))
		if !ok { // unreachable: maxBytes holds one buffer of this class
			r.stats.Rejected++
			return nil, false, ErrDatagramTooLarge
		}
		r.pending = append(r.pending, r.newPartial(seq, buf, now))
		i = len(r.pending) - 1
	}
	p := r.pending[i]
	if len(p.buf) != int(total) {
		r.reject(i)
		return nil, false, ErrBadFragment
	}
	for j := p.got.endAbove(uint64(offset)); j < len(p.got.r) && p.got.r[j].start < end; j++ {
		lo, hi := max(uint64(offset), p.got.r[j].start), min(end, p.got.r[j].end)
		if !bytes.Equal(p.buf[lo:hi], data[lo-uint64(offset):hi-uint64(offset)]) {
			r.reject(i)
			return nil, false, ErrFragmentMismatch
		}
	}
	if !p.got.Add(uint64(offset), end) {
		r.reject(i)
		return nil, false, ErrTooFragmented
	}
	copy(p.buf[offset:], data)
	if len(p.got.r) != 1 || p.got.r[0] != (span{0, uint64(total)}) {
		return nil, false, nil
	}
	datagram = p.buf
	p.buf = nil
	r.lent = datagram
	r.remove(i)
	r.retire(seq)
	r.stats.Completed++
	return datagram, true, nil
}

// Expire drops the partial datagrams that arrived first at least timeout
// before now and returns how many it dropped.
func (r *Reassembler) Expire(now time.Time) int {
	r.recycleLent()
	n := 0
	for i := 0; i < len(r.pending); {
		if now.Sub(r.pending[i].first) >= r.timeout {
			r.retire(r.pending[i].seq)
			r.drop(i)
			n++
			continue
		}
		i++
	}
	r.stats.Expired += uint64(n)
	return n
}

// NextDeadline returns when the next partial datagram expires, or the zero
// time if none is pending.
func (r *Reassembler) NextDeadline() time.Time {
	var d time.Time
	for _, p := range r.pending {
		if t := p.first.Add(r.timeout); d.IsZero() || t.Before(d) {
			d = t
		}
	}
	return d
}

// Release drops every partial datagram and every buffer, for a channel
// that is closed. The counters remain; r stays usable.
func (r *Reassembler) Release() {
	r.lent = nil
	for len(r.pending) > 0 {
		r.drop(len(r.pending) - 1)
	}
	for c := range r.free {
		clear(r.free[c])
		r.free[c] = nil
	}
	clear(r.spare)
	r.spare = r.spare[:0]
	r.held = 0
}

func (r *Reassembler) find(seq uint32) int {
	for i, p := range r.pending {
		if p.seq == seq {
			return i
		}
	}
	return -1
}

func (r *Reassembler) isRetired(seq uint32) bool {
	for _, s := range r.retired[:r.nRetired] {
		if s == seq {
			return true
		}
	}
	return false
}

func (r *Reassembler) retire(seq uint32) {
	r.retired[r.next] = seq
	r.next = (r.next + 1) % retiredLen
	r.nRetired = min(r.nRetired+1, retiredLen)
}

// reject drops pending datagram i after a bad fragment.
func (r *Reassembler) reject(i int) {
	r.retire(r.pending[i].seq)
	r.drop(i)
	r.stats.Rejected++
}

func (r *Reassembler) newPartial(seq uint32, buf []byte, now time.Time) *partial {
	var p *partial
	if n := len(r.spare); n > 0 {
		p = r.spare[n-1]
		r.spare[n-1] = nil
		r.spare = r.spare[:n-1]
		p.got.Clear()
	} else {
		p = new(partial)
		p.got.init(fragRanges)
	}
	p.seq, p.first, p.buf = seq, now, buf
	return p
}

// drop removes pending datagram i, keeping its buffer for reuse.
func (r *Reassembler) drop(i int) {
	r.putFree(r.pending[i].buf)
	r.pending[i].buf = nil
	r.remove(i)
}

// remove takes pending datagram i out of the list, oldest-first order
// kept, and recycles the struct.
func (r *Reassembler) remove(i int) {
	p := r.pending[i]
	copy(r.pending[i:], r.pending[i+1:])
	r.pending[len(r.pending)-1] = nil
	r.pending = r.pending[:len(r.pending)-1]
	if len(r.spare) < cap(r.spare) {
		r.spare = append(r.spare, p)
	}
}

func (r *Reassembler) recycleLent() {
	if r.lent != nil {
		r.putFree(r.lent)
		r.lent = nil
	}
}

// classOf returns the class of a buffer for n bytes (1 ≤ n ≤ 64 KiB).
func classOf(n int) int {
	c := 0
	for 1<<(minClassShift+c) < n {
		c++
	}
	return c
}

func classSize(n int) int { return 1 << (minClassShift + classOf(n)) }

func (r *Reassembler) putFree(b []byte) {
	if b == nil {
		return
	}
	c := classOf(cap(b))
	r.free[c] = append(r.free[c], b[:0])
}

// acquire returns a buffer of length n from the free list or, within
// maxBytes, a new one, dropping free buffers of other classes and then the
// oldest partial datagrams to make room.
func (r *Reassembler) acquire(n int) ([]byte, bool) {
	c := classOf(n)
	size := 1 << (minClassShift + c)
	for {
		if k := len(r.free[c]); k > 0 {
			b := r.free[c][k-1]
			r.free[c][k-1] = nil
			r.free[c] = r.free[c][:k-1]
			return b[:n], true
		}
		if r.held+size <= r.maxBytes {
			r.held += size
			return make([]byte, n, size), true
		}
		if r.dropFree() {
			continue
		}
		if len(r.pending) == 0 {
			return nil, false
		}
		r.evictOldest()
	}
}

// evictOldest drops the oldest partial datagram to make room.
func (r *Reassembler) evictOldest() {
	r.retire(r.pending[0].seq)
	r.drop(0)
	r.stats.Evicted++
}

// dropFree lets the largest free buffer go to the garbage collector.
func (r *Reassembler) dropFree() bool {
	for c := numClasses - 1; c >= 0; c-- {
		if k := len(r.free[c]); k > 0 {
			r.free[c][k-1] = nil
			r.free[c] = r.free[c][:k-1]
			r.held -= 1 << (minClassShift + c)
			return true
		}
	}
	return false
}
