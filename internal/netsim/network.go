package netsim

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"time"
)

// Start is the simulated time at which every Network begins. It is a fixed
// epoch, not the wall clock, so traces are identical from run to run.
var Start = time.Unix(1_000_000_000, 0)

const (
	// DefaultMaxEvents is the event cap of [Network.Run] when
	// Network.MaxEvents is zero.
	DefaultMaxEvents = 50_000_000
	// DefaultMaxPolls is the per-step, per-endpoint Poll cap of
	// [Network.Run] when Network.MaxPolls is zero.
	DefaultMaxPolls = 10_000
	// SendBufferSize is the size of the buffer Run hands to Poll.
	SendBufferSize = 65536
)

const maxDuration = time.Duration(math.MaxInt64)

// dirSalt gives each direction its own PCG stream for one seed, so the
// traffic in one direction never shifts the random choices of the other.
var dirSalt = [2]uint64{0x6e657473696d2d41, 0x6e657473696d2d42} // "netsim-A", "netsim-B"

// Network simulates the path between endpoint 0 (A) and endpoint 1 (B).
// Create it with [New]; the zero Network is not usable.
type Network struct {
	// Tap, if set, observes every packet event: dir is the direction
	// (0: A→B, 1: B→A), at the simulated time of the event. pkt belongs to
	// netsim (or, for EventSent and drops, to the sender) and is valid only
	// during the call. Tap must not modify pkt or Send; it may read Stats.
	Tap func(dir int, pkt []byte, at time.Time, event Event)

	// MaxEvents caps the events (clock steps, deliveries and sends) of one
	// Run call; zero means DefaultMaxEvents.
	MaxEvents int
	// MaxPolls caps how many packets Run takes from one endpoint at one
	// step; zero means DefaultMaxPolls. The rest are taken at the next step.
	MaxPolls int

	now     time.Duration // since Start
	seq     uint64        // scheduling order, the heap's tie-break
	links   [2]link
	pending deliveryHeap
	pool    bufPool
	sendBuf []byte
}

// link is the state of one direction.
type link struct {
	cfg LinkConfig
	rng *rand.Rand
	bad bool // Gilbert–Elliott state

	// The bottleneck is a fluid FIFO: free is when it finishes serializing
	// its backlog, so the backlog at t < free is (free-t) at link rate.
	// frac carries the sub-nanosecond remainder of back-to-back
	// serialization delays (in units of 1/Bandwidth ns) so that the long-run
	// rate is exact.
	free time.Duration
	frac uint64

	queueInt float64       // backlog integral in byte-seconds up to queueAt
	queueAt  time.Duration // time the integral was last brought up to date

	stats LinkStats
}

// New returns a Network at time [Start] whose direction 0 (A→B) follows
// aToB and direction 1 (B→A) follows bToA. All randomness comes from seed:
// the same seed, configurations and inputs give the same trace. New panics
// on an invalid configuration.
func New(seed uint64, aToB, bToA LinkConfig) *Network {
	n := &Network{}
	for dir, cfg := range [2]LinkConfig{aToB, bToA} {
		cfg.validate(dir)
		n.links[dir] = link{cfg: cloneConfig(cfg), rng: rand.New(rand.NewPCG(seed, dirSalt[dir]))}
	}
	return n
}

// cloneConfig copies the Blackouts slice so that later changes by the
// caller do not alter the simulation.
func cloneConfig(c LinkConfig) LinkConfig {
	c.Blackouts = append([]Window(nil), c.Blackouts...)
	return c
}

// Now returns the current simulated time.
func (n *Network) Now() time.Time { return Start.Add(n.now) }

// Pending returns the number of packets scheduled but not yet delivered,
// in both directions.
func (n *Network) Pending() int { return len(n.pending) }

// SetLink replaces the configuration of direction dir from now on: packets
// already in flight keep their delivery times, the bottleneck backlog is
// carried over (re-timed at the new rate) and the burst state is kept.
func (n *Network) SetLink(dir int, cfg LinkConfig) {
	checkIndex("direction", dir)
	cfg.validate(dir)
	l := &n.links[dir]
	l.integrate(n.now)
	backlog := l.backlog(n.now)
	l.cfg = cloneConfig(cfg)
	l.free, l.frac = n.now, 0
	if backlog > 0 && cfg.Bandwidth > 0 {
		l.free = satAdd(n.now, l.serialize(uint64(backlog)))
	}
}

// Stats returns the counters of direction dir (0: A→B, 1: B→A) as of now.
func (n *Network) Stats(dir int) LinkStats {
	checkIndex("direction", dir)
	l := &n.links[dir]
	s := l.stats
	s.QueueByteSeconds = l.queueInt + l.area(l.queueAt, n.now)
	s.Elapsed = n.now
	return s
}

// Send hands pkt to the link from endpoint from (0 or 1) to the other
// endpoint at the current simulated time. Send copies pkt before it
// returns and never modifies it; the caller may reuse it at once. Whether
// and when the packet arrives is decided now, by the link model (see the
// package documentation); it is delivered by Run.
func (n *Network) Send(from int, pkt []byte) {
	checkIndex("endpoint", from)
	l := &n.links[from]
	c, s := &l.cfg, &l.stats
	s.Sent++
	s.BytesSent += int64(len(pkt))
	n.tap(from, pkt, n.now, EventSent)

	if c.MTU > 0 && len(pkt) > c.MTU {
		s.MTUDropped++
		n.tap(from, pkt, n.now, EventMTUDropped)
		return
	}
	for _, w := range c.Blackouts {
		if w.contains(n.now) {
			s.BlackoutDropped++
			n.tap(from, pkt, n.now, EventBlackoutDropped)
			return
		}
	}
	depart := n.now
	if c.Bandwidth > 0 {
		var ok bool
		if depart, ok = l.enqueue(n.now, len(pkt)); !ok {
			s.QueueDropped++
			n.tap(from, pkt, n.now, EventQueueDropped)
			return
		}
	}
	if c.BurstEnter > 0 {
		if !l.bad {
			l.bad = l.chance(c.BurstEnter)
		} else if l.chance(c.BurstExit) {
			l.bad = false
		}
		if l.bad {
			p := c.BurstLoss
			if p == 0 {
				p = 1
			}
			if l.chance(p) {
				s.BurstLost++
				n.tap(from, pkt, n.now, EventBurstLost)
				return
			}
		}
	}
	if l.chance(c.Loss) {
		s.Lost++
		n.tap(from, pkt, n.now, EventLost)
		return
	}
	dup := l.chance(c.Duplicate)
	n.schedule(from, pkt, depart, false)
	if dup {
		n.schedule(from, pkt, depart, true)
	}
}

// schedule copies pkt, applies corruption and delay to the copy, and puts
// it on the delivery heap. depart is when its last bit left the bottleneck.
func (n *Network) schedule(dir int, pkt []byte, depart time.Duration, dup bool) {
	l := &n.links[dir]
	c, s := &l.cfg, &l.stats
	buf := n.pool.get(len(pkt))
	copy(buf, pkt)
	if dup {
		s.Duplicated++
		n.tap(dir, buf, n.now, EventDuplicated)
	}
	if len(buf) > 0 && l.chance(c.Corrupt) {
		l.flipBits(buf)
		s.Corrupted++
		n.tap(dir, buf, n.now, EventCorrupted)
	}
	at := satAdd(depart, c.Delay)
	if c.Jitter > 0 {
		at = satAdd(at, time.Duration(l.rng.Int64N(int64(c.Jitter))))
	}
	if l.chance(c.Reorder) {
		rd := c.ReorderDelay
		if rd == 0 {
			rd = DefaultReorderDelay
		}
		at = satAdd(at, rd)
	}
	n.seq++
	n.pending.push(delivery{at: at, seq: n.seq, buf: buf, dir: dir})
	s.InFlight++
}

// deliverNext pops the earliest delivery and hands it to to. The buffer
// returns to the pool afterwards.
func (n *Network) deliverNext(eps *[2]Endpoint) {
	d := n.pending.pop()
	l := &n.links[d.dir]
	l.stats.InFlight--
	l.stats.Delivered++
	l.stats.BytesDelivered += int64(len(d.buf))
	n.tap(d.dir, d.buf, d.at, EventDelivered)
	eps[1-d.dir].Receive(d.buf, Start.Add(d.at))
	n.pool.put(d.buf)
}

func (n *Network) tap(dir int, pkt []byte, at time.Duration, ev Event) {
	if n.Tap != nil {
		n.Tap(dir, pkt, Start.Add(at), ev)
	}
}

// chance returns true with probability p, drawing from the generator only
// when the outcome is not certain.
func (l *link) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	return p >= 1 || l.rng.Float64() < p
}

// flipBits flips 1 to 3 distinct random bits of the non-empty buf.
func (l *link) flipBits(buf []byte) {
	nbits := len(buf) * 8
	k := 1 + l.rng.IntN(3)
	var chosen [3]int
	for i := 0; i < k; {
		p := l.rng.IntN(nbits)
		dup := false
		for _, q := range chosen[:i] {
			dup = dup || q == p
		}
		if dup {
			continue // nbits >= 8 > k, so a fresh bit always exists
		}
		chosen[i] = p
		buf[p/8] ^= 1 << (p % 8)
		i++
	}
}

// enqueue admits size bytes to the bottleneck at now and returns the time
// its last bit leaves, or false when the drop-tail queue has no room.
func (l *link) enqueue(now time.Duration, size int) (time.Duration, bool) {
	l.integrate(now)
	backlog := l.backlog(now)
	start := now
	if l.free > now {
		start = l.free
	} else {
		l.frac = 0 // idle link: no back-to-back remainder to carry
	}
	total := backlog + int64(size)
	if q := l.cfg.QueueBytes; q > 0 && total > int64(q) {
		return 0, false
	}
	l.free = satAdd(start, l.serialize(uint64(size)))
	if total > int64(l.stats.MaxQueueBytes) {
		l.stats.MaxQueueBytes = int(min(total, math.MaxInt))
	}
	return l.free, true
}

// serialize returns the serialization delay of size bytes at the link rate
// and carries the remainder in l.frac.
func (l *link) serialize(size uint64) time.Duration {
	bw := uint64(l.cfg.Bandwidth)
	hi, lo := bits.Mul64(size, 8*uint64(time.Second))
	var carry uint64
	lo, carry = bits.Add64(lo, l.frac, 0)
	hi += carry
	if hi >= bw {
		l.frac = 0
		return maxDuration
	}
	q, r := bits.Div64(hi, lo, bw)
	l.frac = r
	if q > math.MaxInt64 {
		return maxDuration
	}
	return time.Duration(q)
}

// backlog returns the bytes not yet serialized at now, rounded up.
func (l *link) backlog(now time.Duration) int64 {
	bw := uint64(l.cfg.Bandwidth)
	if bw == 0 || l.free <= now {
		return 0
	}
	const div = 8 * uint64(time.Second)
	hi, lo := bits.Mul64(uint64(l.free-now), bw)
	if hi >= div {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, div)
	if r > 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// area is the integral of the backlog, in byte-seconds, over [from, to],
// given no packet joins the queue in between.
func (l *link) area(from, to time.Duration) float64 {
	if l.cfg.Bandwidth == 0 || l.free <= from || to <= from {
		return 0
	}
	end := min(to, l.free)
	a, b := (l.free - from).Seconds(), (l.free - end).Seconds()
	return float64(l.cfg.Bandwidth) / 8 * (a*a - b*b) / 2
}

// integrate brings the backlog integral up to now.
func (l *link) integrate(now time.Duration) {
	if now > l.queueAt {
		l.queueInt += l.area(l.queueAt, now)
		l.queueAt = now
	}
}

// satAdd adds two non-negative durations, saturating instead of wrapping.
func satAdd(a, b time.Duration) time.Duration {
	if a > maxDuration-b {
		return maxDuration
	}
	return a + b
}

func checkIndex(what string, i int) {
	if i != 0 && i != 1 {
		panic(fmt.Sprintf("netsim: %s %d is not 0 or 1", what, i))
	}
}

// delivery is a scheduled packet copy; buf comes from the pool.
type delivery struct {
	at  time.Duration
	seq uint64
	buf []byte
	dir int
}

// deliveryHeap is a binary min-heap ordered by (at, seq). It is written
// out rather than built on container/heap to avoid boxing each element.
type deliveryHeap []delivery

func (h deliveryHeap) less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}

func (h *deliveryHeap) push(d delivery) {
	*h = append(*h, d)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *deliveryHeap) pop() delivery {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = delivery{}
	s = s[:last]
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(s) {
			break
		}
		if c+1 < len(s) && s.less(c+1, c) {
			c++
		}
		if !s.less(c, i) {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
	*h = s
	return top
}

// bufPool recycles packet copies in power-of-two size classes from 64 bytes
// to 64 KiB, keeping at most poolLimit bytes. Larger packets are simply
// allocated.
type bufPool struct {
	free  [poolClasses][][]byte
	bytes int
}

const (
	poolMinShift = 6
	poolClasses  = 11 // 64 B .. 64 KiB
	poolLimit    = 8 << 20
)

// poolClass returns the size class for a buffer of n bytes, or -1.
func poolClass(n int) int {
	if n <= 1<<poolMinShift {
		return 0
	}
	c := bits.Len(uint(n-1)) - poolMinShift
	if c >= poolClasses {
		return -1
	}
	return c
}

func (p *bufPool) get(n int) []byte {
	c := poolClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if k := len(p.free[c]); k > 0 {
		b := p.free[c][k-1]
		p.free[c][k-1] = nil
		p.free[c] = p.free[c][:k-1]
		p.bytes -= cap(b)
		return b[:n]
	}
	return make([]byte, n, 1<<(c+poolMinShift))
}

func (p *bufPool) put(b []byte) {
	c := poolClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+poolMinShift) || p.bytes+cap(b) > poolLimit {
		return
	}
	p.bytes += cap(b)
	p.free[c] = append(p.free[c], b[:0])
}
