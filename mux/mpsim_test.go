package mux

import (
	"container/heap"
	"fmt"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// A simulator of several paths between two sessions, for the multi-path
// tests (paths.go): each path has a link per direction with its own
// one-way delay, rate and drop-tail queue, and can be made dark (every
// packet dropped). The clock is simulated; the run is deterministic.

// mpLink is one direction of a simulated path.
type mpLink struct {
	delay     time.Duration
	mtu       int     // the largest packet it carries
	rate      float64 // bytes per second; 0: no limit
	queue     int     // bytes the link may hold waiting for the wire
	dark      bool
	busyUntil time.Time // when the wire is free again
	carried   uint64    // bytes delivered
	dropped   int       // packets dropped (dark or queue full)
	tooBig    int       // packets dropped for their size (PMTU probes)
}

// send returns when a packet of size bytes entering at now arrives, or
// false when the link drops it.
func (l *mpLink) send(now time.Time, size int) (time.Time, bool) {
	if size > l.mtu {
		l.tooBig++ // larger than the path carries: a PMTU probe
		return time.Time{}, false
	}
	if l.dark {
		l.dropped++
		return time.Time{}, false
	}
	if l.rate == 0 {
		return now.Add(l.delay), true
	}
	start := l.busyUntil
	if start.Before(now) {
		start = now
	}
	if waiting := float64(start.Sub(now)) / float64(time.Second) * l.rate; int(waiting)+size > l.queue {
		l.dropped++
		return time.Time{}, false
	}
	l.busyUntil = start.Add(time.Duration(float64(size) / l.rate * float64(time.Second)))
	return l.busyUntil.Add(l.delay), true
}

// mpPathConfig describes a simulated path, the same both ways.
type mpPathConfig struct {
	delay time.Duration // one way
	rate  float64       // bytes per second
	queue int
	mtu   int // 0: ethernetMTU
}

// mpDelivery is a packet on its way.
type mpDelivery struct {
	at   time.Time
	seq  uint64
	to   int // 0: a, 1: b
	path int
	pkt  []byte
}

type mpQueue []mpDelivery

func (q mpQueue) Len() int { return len(q) }
func (q mpQueue) Less(i, j int) bool {
	return q[i].at.Before(q[j].at) || q[i].at.Equal(q[j].at) && q[i].seq < q[j].seq
}
func (q mpQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mpQueue) Push(x any)   { *q = append(*q, x.(mpDelivery)) }
func (q *mpQueue) Pop() any {
	old := *q
	d := old[len(old)-1]
	*q = old[:len(old)-1]
	return d
}

// mpSim joins apps a and b over paths; links[p][0] carries a→b.
type mpSim struct {
	t     testing.TB
	now   time.Time
	apps  [2]*peerApp
	links [][2]*mpLink
	q     mpQueue
	seq   uint64
	buf   []byte
	// at, if set, runs before each step at the simulated time (scripted
	// events: a path going dark, coming back).
	at func(now time.Time)
}

// newMPSim makes two sessions joined by the paths of cfgs: path 0 is
// theirs from the start, and each further path is added to both (AddPath
// with mode) in order, so that path ids match on both sides.
func newMPSim(t testing.TB, mode PathMode, cfgs ...mpPathConfig) *mpSim {
	t.Helper()
	return newMPSimConfig(t, Config{}, mode, cfgs...)
}

// newMPSimConfig is newMPSim with both sessions configured by cfg.
func newMPSimConfig(t testing.TB, cfg Config, mode PathMode, cfgs ...mpPathConfig) *mpSim {
	t.Helper()
	now := time.Unix(1_700_000_000, 0)
	a, b := pair(t, cfg, cfg, now)
	sim := &mpSim{t: t, now: now, buf: make([]byte, wire.MaxPacketSize)}
	sim.apps = [2]*peerApp{newPeerApp(t, "a", a), newPeerApp(t, "b", b)}
	for i, c := range cfgs {
		mtu := c.mtu
		if mtu == 0 {
			mtu = ethernetMTU
		}
		link := func() *mpLink { return &mpLink{delay: c.delay, rate: c.rate, queue: c.queue, mtu: mtu} }
		sim.links = append(sim.links, [2]*mpLink{link(), link()})
		if i == 0 {
			continue
		}
		for _, s := range []*Session{a, b} {
			// Validation measured the path's round trip.
			if id, err := s.AddPath(mode, 2*c.delay); err != nil || id != i {
				t.Fatalf("AddPath: %d, %v; want %d", id, err, i)
			}
		}
	}
	return sim
}

// flush lets both ends send all they may now.
func (m *mpSim) flush() {
	for side, app := range m.apps {
		app.step(m.now)
		for k := 0; k < 10000; k++ {
			n, path := app.s.PollPath(m.buf, m.now)
			if n == 0 {
				break
			}
			n = simSeal(m.buf, n)
			if path < 0 || path >= len(m.links) {
				m.t.Fatalf("%s: packet for path %d of %d", app.name, path, len(m.links))
			}
			if at, ok := m.links[path][side].send(m.now, n); ok {
				m.seq++
				heap.Push(&m.q, mpDelivery{at: at, seq: m.seq, to: 1 - side, path: path, pkt: append([]byte(nil), m.buf[:n]...)})
			}
		}
	}
}

// run advances the simulation until done reports true or limit (simulated
// time from now) passes; it fails the test on an app error.
func (m *mpSim) run(done func() bool, limit time.Duration) error {
	end := m.now.Add(limit)
	for events := 0; events < 50_000_000; events++ {
		if m.at != nil {
			m.at(m.now)
		}
		m.flush()
		for _, a := range m.apps {
			if a.err != nil {
				return a.err
			}
		}
		if done() {
			return nil
		}
		next := time.Time{}
		consider := func(t time.Time) {
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		if len(m.q) > 0 {
			consider(m.q[0].at)
		}
		for _, a := range m.apps {
			consider(a.s.Deadline())
		}
		if m.at != nil {
			consider(m.now.Add(10 * time.Millisecond)) // scripted events need the clock to tick
		}
		if next.IsZero() {
			return fmt.Errorf("nothing left to happen at %v", m.now.Sub(time.Unix(1_700_000_000, 0)))
		}
		if next.After(end) {
			return fmt.Errorf("not done within %v", limit)
		}
		if next.After(m.now) {
			m.now = next
		}
		for len(m.q) > 0 && !m.q[0].at.After(m.now) {
			d := heap.Pop(&m.q).(mpDelivery)
			m.links[d.path][1-d.to].carried += uint64(len(d.pkt))
			app := m.apps[d.to]
			if body, ok := simOpen(d.pkt); ok {
				if err := app.s.ReceivePath(body, d.path, m.now); err != nil {
					return fmt.Errorf("%s: %w", app.name, err)
				}
			}
		}
	}
	return fmt.Errorf("event limit")
}

// elapsed is the simulated time since the start.
func (m *mpSim) elapsed() time.Duration { return m.now.Sub(time.Unix(1_700_000_000, 0)) }

// setDark makes path p dark (both ways) or not.
func (m *mpSim) setDark(p int, dark bool) {
	m.links[p][0].dark, m.links[p][1].dark = dark, dark
}
