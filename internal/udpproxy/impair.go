package udpproxy

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Directions index the per-direction generators and counters.
const (
	toTarget = 0 // client → target
	toClient = 1 // target → client
)

// newRand returns the decision generator of direction dir for a seed; the
// two directions use distinct PCG streams.
func newRand(seed uint64, dir int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(dir)))
}

// copyPlan is what happens to one copy of a datagram.
type copyPlan struct {
	delay time.Duration // 0: send at once from the reading goroutine
	nflip int           // number of bits to flip, 0 to 3
	flips [3]int        // distinct bit indexes into the datagram
}

// plan is the decision for one datagram: n copies (0 when lost).
type plan struct {
	n      int
	copies [2]copyPlan
}

// decide draws the fate of a datagram of size bytes travelling in
// direction dir and counts the decisions. The decisions depend only on
// the seed, the configuration and the sizes of the datagrams before it in
// that direction; a value is drawn for each decision even when its
// probability is zero or one. The caller holds p.mu.
func (p *Proxy) decide(dir, size int) plan {
	cfg, r, st := &p.cfg, p.rng[dir], &p.stats[dir]
	st.received.Add(1)
	lost := r.Float64() < cfg.Loss
	dup := r.Float64() < cfg.Duplicate
	var pl plan
	if lost {
		st.lost.Add(1)
		return pl
	}
	pl.n = 1
	if dup {
		st.duplicated.Add(1)
		pl.n = 2
	}
	for i := range pl.n {
		c := &pl.copies[i]
		c.delay = cfg.Delay
		if r.Float64() < cfg.Reorder {
			c.delay += cfg.ReorderDelay
			st.reordered.Add(1)
		}
		if r.Float64() < cfg.Corrupt && size > 0 {
			st.corrupted.Add(1)
			c.nflip = 1 + r.IntN(3)
			for j := 0; j < c.nflip; {
				b := r.IntN(8 * size)
				if !containsInt(c.flips[:j], b) {
					c.flips[j] = b
					j++
				}
			}
		}
	}
	return pl
}

// shape applies Config.Rate to the copies of plan pl, each size bytes, in
// direction dir: each waits for the virtual wire, and one that would find
// more than RateQueue bytes ahead of it is dropped. The caller holds p.mu.
func (p *Proxy) shape(dir, size int, pl *plan) {
	rate := p.cfg.Rate
	if rate <= 0 || pl.n == 0 {
		return
	}
	now := time.Now()
	kept := 0
	for i := range pl.n {
		start := now
		if p.wireFree[dir].After(now) {
			start = p.wireFree[dir]
		}
		if float64(start.Sub(now))*rate/float64(time.Second)+float64(size) > float64(p.cfg.RateQueue) {
			p.stats[dir].dropped.Add(1)
			continue
		}
		p.wireFree[dir] = start.Add(time.Duration(float64(size) / rate * float64(time.Second)))
		c := pl.copies[i]
		c.delay += p.wireFree[dir].Sub(now)
		pl.copies[kept] = c
		kept++
	}
	pl.n = kept
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// flip toggles the planned bits of pkt. Flipping twice restores pkt, which
// lets an immediate copy be corrupted in the read buffer and repaired
// before the next copy is made from it.
func (c *copyPlan) flip(pkt []byte) {
	for _, b := range c.flips[:c.nflip] {
		pkt[b>>3] ^= 1 << (b & 7)
	}
}

// Buffers. A delayed copy is held in a pooled buffer of one of two sizes,
// so the queue of small datagrams does not pin 64 KiB per entry.
const (
	smallBuf = 2048
	bufSize  = 65536 // larger than any UDP payload
)

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	largePool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}
)

// getBuf returns a pooled buffer of at least n bytes.
func getBuf(n int) *[]byte {
	if n <= smallBuf {
		return smallPool.Get().(*[]byte)
	}
	return largePool.Get().(*[]byte)
}

// putBuf returns a buffer obtained from getBuf to its pool.
func putBuf(b *[]byte) {
	if cap(*b) == bufSize {
		largePool.Put(b)
	} else {
		smallPool.Put(b)
	}
}

// delayed is a copy waiting in the scheduler's queue.
type delayed struct {
	at   time.Time // when to send
	seq  uint64    // insertion order, breaks ties so equal delays stay FIFO
	dir  int
	s    *session
	buf  *[]byte
	n    int
	conn *net.UDPConn // socket to send from, resolved when the copy is due
}

// before orders the queue by due time, then insertion order.
func (d *delayed) before(e *delayed) bool {
	if !d.at.Equal(e.at) {
		return d.at.Before(e.at)
	}
	return d.seq < e.seq
}

// queue is a binary min-heap of delayed copies. It is hand-written rather
// than container/heap so that pushing a value does not allocate.
type queue []delayed

func (q *queue) push(d delayed) {
	*q = append(*q, d)
	h := *q
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h[i].before(&h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

// pop removes and returns the earliest copy; the queue must not be empty.
func (q *queue) pop() delayed {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = delayed{} // drop references for the garbage collector
	h = h[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(h) && h[l].before(&h[m]) {
			m = l
		}
		if r := l + 1; r < len(h) && h[r].before(&h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}
