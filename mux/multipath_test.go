package mux

import (
	"github.com/havenproto/haven/mux/congestion"
	"testing"
	"time"
)

// Multi-path tests (paths.go, PROTOCOL.md §6.6) on the simulator of
// mpsim_test.go: 20 Mbit/s paths (2.5 MB/s) with a 10 ms one-way delay
// and about a round trip of queue, unless a test says otherwise.

var mpLeg = mpPathConfig{delay: 10 * time.Millisecond, rate: 2.5e6, queue: 64 << 10}

// stallWatch records the longest wait between two reads that made
// progress on b's incoming streams, once data flowed.
type stallWatch struct {
	last    time.Time
	longest time.Duration
	at      time.Time // when the longest ended
}

func (w *stallWatch) attach(a *peerApp) {
	a.progress = func(_ *streamJob, now time.Time) {
		if !w.last.IsZero() && now.Sub(w.last) > w.longest {
			w.longest, w.at = now.Sub(w.last), now
		}
		w.last = now
	}
}

// transfer sends size bytes from a to b on one stream and runs the
// simulation until b has read them all (checked byte for byte).
func transfer(t *testing.T, m *mpSim, size uint64, limit time.Duration) time.Duration {
	t.Helper()
	start := m.elapsed()
	m.apps[0].send("bulk", 3, size)
	m.apps[1].expect["bulk"] = size
	if err := m.run(allDone(m.apps[:]...), limit); err != nil {
		t.Fatalf("at %v: %v", m.elapsed(), err)
	}
	return m.elapsed() - start
}

// TestMultipathAggregates: two equal rate-limited paths carry a transfer
// together, each a fair share of it, and it takes at most 1/1.6 of the
// time it takes over one of them alone (the issue's ≥ 1.6× throughput).
func TestMultipathAggregates(t *testing.T) {
	const size = 8 << 20
	one := newMPSim(t, PathActive, mpLeg)
	alone := transfer(t, one, size, time.Minute)
	two := newMPSim(t, PathActive, mpLeg, mpLeg)
	both := transfer(t, two, size, time.Minute)
	ratio := float64(alone) / float64(both)
	p0, _ := two.apps[0].s.PathStats(0)
	p1, _ := two.apps[0].s.PathStats(1)
	t.Logf("one path %v, two %v: %.2f×; bytes sent on each %d, %d", alone, both, ratio, p0.BytesSent, p1.BytesSent)
	if ratio < 1.6 {
		t.Errorf("two paths took %v, one %v: %.2f× the throughput, want ≥ 1.6×", both, alone, ratio)
	}
	total := p0.BytesSent + p1.BytesSent
	if p0.BytesSent < total*3/10 || p1.BytesSent < total*3/10 {
		t.Errorf("paths carried %d and %d bytes: one did not take its share", p0.BytesSent, p1.BytesSent)
	}
}

// TestMultipathNoSpuriousLoss: over two paths of different delay (5 and
// 40 ms one way) that never drop a packet, the fast path's packets
// overtake the slow one's all the time; loss detection per path (§6.6.4)
// declares none of them lost, and both paths carry data.
//
// With BBR on both paths their packets interleave one by one, and every
// slow-path packet in flight is a gap in the stream's offsets too: the
// receive buffer's 128 intervals ran out and it dropped packets
// unacknowledged until streams tracked as many intervals as the ACK
// ranges of a session with several paths (512).
func TestMultipathNoSpuriousLoss(t *testing.T) {
	t.Run("CUBIC", func(t *testing.T) { noSpuriousLoss(t, Config{}) })
	t.Run("BBR", func(t *testing.T) {
		noSpuriousLoss(t, Config{NewController: func(mtu int) congestion.Controller { return congestion.NewBBR(mtu) }})
	})
}

func noSpuriousLoss(t *testing.T, cfg Config) {
	fast := mpPathConfig{delay: 5 * time.Millisecond, rate: 2.5e6, queue: 1 << 30}
	slow := mpPathConfig{delay: 40 * time.Millisecond, rate: 2.5e6, queue: 1 << 30}
	m := newMPSimConfig(t, cfg, PathActive, fast, slow)
	transfer(t, m, 4<<20, time.Minute)
	for i, a := range m.apps {
		probes := m.links[0][i].tooBig + m.links[1][i].tooBig // lost PMTU probes count as lost
		if st := a.s.Stats(); st.PacketsLost != uint64(probes) || st.SpuriousLosses != 0 {
			t.Errorf("%s: %d packets declared lost (%d spuriously, %d PMTU probes) on paths that drop nothing",
				a.name, st.PacketsLost, st.SpuriousLosses, probes)
		}
		if i == 0 {
			for k := 0; k < 2; k++ {
				if ps, _ := a.s.PathStats(k); ps.BytesSent < 256<<10 {
					t.Errorf("path %d carried only %d bytes", k, ps.BytesSent)
				}
			}
		}
	}
	for k := 0; k < 2; k++ {
		if d := m.links[k][0].dropped + m.links[k][1].dropped; d != 0 {
			t.Fatalf("the simulator dropped %d packets on path %d: the test proves nothing", d, k)
		}
	}
}

// TestMultipathFailover: one of two paths goes dark in the middle of a
// transfer for a second. The transfer completes byte-exact, no read
// waits a second (§6.6.5 bounds the stall to about two probe timeouts),
// the dark path is suspect meanwhile, and once it is back it carries
// data again.
func TestMultipathFailover(t *testing.T) {
	m := newMPSim(t, PathActive, mpLeg, mpLeg)
	var w stallWatch
	w.attach(m.apps[1])
	var suspect bool
	var sentAtReturn uint64
	m.at = func(now time.Time) {
		e := m.elapsed()
		switch {
		case e >= 500*time.Millisecond && e < 1500*time.Millisecond:
			m.setDark(1, true)
			if ps, _ := m.apps[0].s.PathStats(1); ps.Suspect {
				suspect = true
			}
		case e >= 1500*time.Millisecond && m.links[1][0].dark:
			m.setDark(1, false)
			ps, _ := m.apps[0].s.PathStats(1)
			sentAtReturn = ps.BytesSent
		}
	}
	took := transfer(t, m, 16<<20, time.Minute)
	ps, _ := m.apps[0].s.PathStats(1)
	t.Logf("took %v; longest read stall %v (ended at %v); path 1 sent %d bytes after its return", took, w.longest, w.at, ps.BytesSent-sentAtReturn)
	if !suspect {
		t.Error("the dark path never became suspect")
	}
	if w.longest >= time.Second {
		t.Errorf("a read waited %v (until %v): the dark path stalled the transfer", w.longest, w.at)
	}
	if took < 1600*time.Millisecond {
		t.Fatalf("the transfer ended at %v, before the path came back: the test proves nothing", took)
	}
	if got := ps.BytesSent - sentAtReturn; got < 1<<20 {
		t.Errorf("path 1 carried %d bytes after it came back, want it used again", got)
	}
	if ps.Suspect {
		t.Error("path 1 still suspect at the end")
	}
}

// TestMultipathBackup: a backup path carries nothing while the active
// path works; when the active path goes dark, the transfer moves to the
// backup and completes.
func TestMultipathBackup(t *testing.T) {
	m := newMPSim(t, PathBackup, mpLeg, mpLeg)
	var before uint64
	m.at = func(now time.Time) {
		if m.elapsed() >= 500*time.Millisecond && !m.links[0][0].dark {
			ps, _ := m.apps[0].s.PathStats(1)
			before = ps.PacketsSent
			m.setDark(0, true)
		}
	}
	var w stallWatch
	w.attach(m.apps[1])
	transfer(t, m, 4<<20, time.Minute)
	ps, _ := m.apps[0].s.PathStats(1)
	if before != 0 {
		t.Errorf("the backup path carried %d packets while the active path worked", before)
	}
	if ps.BytesSent < 2<<20 {
		t.Errorf("the backup carried %d bytes after the active path went dark", ps.BytesSent)
	}
	if w.longest >= time.Second {
		t.Errorf("a read waited %v during the failover", w.longest)
	}
}

// TestPathLimits: AddPath stops at MaxPaths, RemovePath frees an id (not
// path 0's), and what a removed path had in flight is sent again on the
// others.
func TestPathLimits(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a, _ := pair(t, Config{}, Config{}, now)
	for i := 1; i < MaxPaths; i++ {
		if id, err := a.AddPath(PathActive, 0); err != nil || id != i {
			t.Fatalf("AddPath %d: %d, %v", i, id, err)
		}
	}
	if _, err := a.AddPath(PathActive, 0); err != ErrTooManyPaths {
		t.Fatalf("AddPath beyond MaxPaths: %v", err)
	}
	if err := a.RemovePath(0); err != ErrNoPath {
		t.Fatalf("RemovePath(0): %v", err)
	}
	id, err := a.OpenStream("", 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(id, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	on := map[int]int{}
	for {
		n, k := a.PollPath(buf, now)
		if n == 0 {
			break
		}
		on[k]++
	}
	if on[3] == 0 {
		t.Fatalf("nothing went on path 3 (%v)", on)
	}
	lost := a.Stats().PacketsLost
	if err := a.RemovePath(3); err != nil {
		t.Fatal(err)
	}
	if ps, _ := a.PathStats(3); ps.Live || ps.BytesInFlight != 0 || a.Stats().PacketsLost-lost != uint64(on[3]) {
		t.Fatalf("after RemovePath: %+v, %d packets lost, want %d", ps, a.Stats().PacketsLost-lost, on[3])
	}
	if id, err := a.AddPath(PathActive, 0); err != nil || id != 3 {
		t.Fatalf("AddPath after RemovePath(3): %d, %v", id, err)
	}
}

// TestPathKeepAlive: an idle session sends a PING on each further path
// it holds every keepalive interval (so middleboxes keep the path's
// bindings and its RTT stays known), and the peer's ACK comes back the
// same way.
func TestPathKeepAlive(t *testing.T) {
	m := newMPSim(t, PathBackup, mpLeg, mpLeg)
	ka := m.apps[0].s.KeepAlive()
	if ka <= 0 {
		t.Fatal("no keepalive interval by default")
	}
	m.at = func(time.Time) {}
	if err := m.run(func() bool { return m.elapsed() > 5*ka/2 }, 3*ka); err != nil {
		t.Fatal(err)
	}
	for _, a := range m.apps {
		ps, _ := a.s.PathStats(1)
		if ps.PacketsSent < 2 || ps.Suspect || !ps.Live {
			t.Errorf("%s: path 1 after %v idle: %+v, want a PING (or its ACK) per keepalive interval", a.name, m.elapsed(), ps)
		}
	}
	if err := m.apps[0].s.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestPathMTUPerPath: each path searches its own packet size (PROTOCOL.md
// §6.6.4): over a 1,500-byte path and a jumbo-frame path at once, the
// second grows to jumbo packets while the first keeps the base size.
func TestPathMTUPerPath(t *testing.T) {
	jumbo := mpLeg
	jumbo.mtu = 9000 - 28
	m := newMPSim(t, PathActive, mpLeg, jumbo)
	transfer(t, m, 4<<20, time.Minute)
	p0, _ := m.apps[0].s.PathStats(0)
	p1, _ := m.apps[0].s.PathStats(1)
	if p0.PacketSize > ethernetMTU || p1.PacketSize != pmtuJumbo {
		t.Fatalf("packet sizes %d and %d, want at most %d on the first path and %d on the jumbo one",
			p0.PacketSize, p1.PacketSize, ethernetMTU, pmtuJumbo)
	}
	if p1.BytesSent/max(p1.PacketsSent, 1) < 2*ethernetMTU {
		t.Fatalf("the jumbo path carried %d bytes in %d packets: not jumbo packets", p1.BytesSent, p1.PacketsSent)
	}
}

// TestAddPathGrowsStreamRanges: a stream opened before a session's
// second path exists tracks as many gaps as one opened after it (see
// TestMultipathNoSpuriousLoss), on both sides of it.
func TestAddPathGrowsStreamRanges(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a, _ := pair(t, Config{}, Config{}, now)
	before, err := a.OpenStream("x", 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddPath(PathActive, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	after, err := a.OpenStream("y", 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint32{before, after} {
		c := a.channels.Lookup(id)
		if r, s := c.recv.MaxRanges(), c.send.MaxRanges(); r < maxAckRangesMulti || s < maxAckRangesMulti {
			t.Errorf("channel %d tracks %d received and %d sent intervals, want %d", id, r, s, maxAckRangesMulti)
		}
	}
}
