package udpproxy

import (
	"bytes"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestPassThrough(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	p := newProxy(t, srv.addr(), Config{})
	c := listen(t, lo4)
	const n = 1000
	for i, r := range roundTrips(t, c, p, n, 16) {
		if !bytes.Equal(r, payload(i)) {
			t.Fatalf("reply %d is %x, want datagram %d intact", i, r, i)
		}
	}
	st := settle(t, p)
	for _, d := range []DirStats{st.ToTarget, st.ToClient} {
		if d != (DirStats{Received: n, Forwarded: n}) {
			t.Errorf("stats %+v, want %d received and forwarded", d, n)
		}
	}
	if srv.portCount() != 1 {
		t.Errorf("target saw %d source ports, want 1", srv.portCount())
	}
}

func TestPassThroughIPv6(t *testing.T) {
	probe, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(lo6))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	srv := startServer(t, lo6, true, 0)
	p, err := New(lo6, srv.addr(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Addr().Addr().Is6() {
		t.Fatalf("Addr %v, want IPv6", p.Addr())
	}
	for i, r := range roundTrips(t, listen(t, lo6), p, 100, 8) {
		if !bytes.Equal(r, payload(i)) {
			t.Fatalf("reply %d corrupted", i)
		}
	}
}

// within reports whether got/total lies within tol of want.
func within(got, total uint64, want, tol float64) bool {
	return total > 0 && math.Abs(float64(got)/float64(total)-want) <= tol
}

func TestLoss(t *testing.T) {
	srv := startServer(t, lo4, false, 0)
	p := newProxy(t, srv.addr(), Config{Loss: 0.3, Seed: 1})
	c := listen(t, lo4)
	const n = 3000
	sendPaced(t, c, p, 0, n, 32)
	st := settle(t, p).ToTarget
	eventually(5*time.Second, func() bool { return uint64(srv.count()) == st.Forwarded })
	if st.Received != n || st.Lost+st.Forwarded != n {
		t.Errorf("stats %+v: want %d received, each lost or forwarded", st, n)
	}
	if !within(st.Lost, n, 0.3, 0.05) {
		t.Errorf("lost %d of %d, want about 30%%", st.Lost, n)
	}
	if got := uint64(srv.count()); !within(got, n, 0.7, 0.05) || got > st.Forwarded {
		t.Errorf("target received %d of %d (forwarded %d), want about 70%%", got, n, st.Forwarded)
	}
	if d := p.Stats().ToClient; d != (DirStats{}) {
		t.Errorf("nothing went to the client, but stats say %+v", d)
	}
}

// TestDeterministic runs the same traffic through two proxies with the
// same seed: the same datagrams must be lost and duplicated.
func TestDeterministic(t *testing.T) {
	run := func() []int {
		srv := startServer(t, lo4, false, 0)
		p := newProxy(t, srv.addr(), Config{Loss: 0.3, Duplicate: 0.1, Seed: 42})
		sendPaced(t, listen(t, lo4), p, 0, 500, 8)
		st := settle(t, p).ToTarget
		if !eventually(5*time.Second, func() bool { return uint64(srv.count()) == st.Forwarded }) {
			t.Fatalf("target got %d datagrams, proxy forwarded %d", srv.count(), st.Forwarded)
		}
		var seqs []int
		for _, b := range srv.received() {
			seqs = append(seqs, seqOf(b))
		}
		return seqs
	}
	a, b := run(), run()
	if len(a) != len(b) {
		t.Fatalf("runs delivered %d and %d datagrams", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("runs differ at delivery %d: %d vs %d", i, a[i], b[i])
		}
	}
}

func TestDuplicate(t *testing.T) {
	srv := startServer(t, lo4, false, 0)
	p := newProxy(t, srv.addr(), Config{Duplicate: 0.2, Seed: 3})
	const n = 2000
	sendPaced(t, listen(t, lo4), p, 0, n, 32)
	st := settle(t, p).ToTarget
	if !eventually(5*time.Second, func() bool { return uint64(srv.count()) == st.Forwarded }) {
		t.Fatalf("target got %d datagrams, proxy forwarded %d", srv.count(), st.Forwarded)
	}
	if st.Forwarded != n+st.Duplicated || !within(st.Duplicated, n, 0.2, 0.05) {
		t.Fatalf("stats %+v: want about 20%% of %d duplicated, all forwarded", st, n)
	}
	seen := make(map[int]int)
	for _, b := range srv.received() {
		seen[seqOf(b)]++
	}
	twice := 0
	for i := range n {
		switch seen[i] {
		case 1:
		case 2:
			twice++
		default:
			t.Fatalf("datagram %d arrived %d times", i, seen[i])
		}
	}
	if uint64(twice) != st.Duplicated {
		t.Errorf("%d datagrams arrived twice, stats say %d duplicated", twice, st.Duplicated)
	}
}

func TestCorrupt(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	p := newProxy(t, srv.addr(), Config{Corrupt: 0.2, Seed: 5})
	const n = 2000
	replies := roundTrips(t, listen(t, lo4), p, n, 16)

	// Without loss or reordering the target's i-th datagram is datagram i.
	got := srv.received()
	if len(got) != n {
		t.Fatalf("target got %d datagrams, want %d", len(got), n)
	}
	corrupted := 0
	for i, b := range got {
		if len(b) != payloadSize {
			t.Fatalf("datagram %d has %d bytes, want %d", i, len(b), payloadSize)
		}
		switch d := bitDiff(b, payload(i)); {
		case d > 3:
			t.Fatalf("datagram %d has %d flipped bits, want at most 3", i, d)
		case d > 0:
			corrupted++
		}
	}
	st := settle(t, p)
	if uint64(corrupted) != st.ToTarget.Corrupted || !within(st.ToTarget.Corrupted, n, 0.2, 0.05) {
		t.Errorf("%d corrupted datagrams at the target, stats %+v", corrupted, st.ToTarget)
	}
	// Replies were corrupted again on the way back.
	changed := 0
	for i, r := range replies {
		if len(r) != payloadSize {
			t.Fatalf("reply %d has %d bytes", i, len(r))
		}
		if !bytes.Equal(r, got[i]) {
			changed++
			if d := bitDiff(r, got[i]); d > 3 {
				t.Fatalf("reply %d has %d flipped bits", i, d)
			}
		}
	}
	if uint64(changed) != st.ToClient.Corrupted || changed == 0 {
		t.Errorf("%d replies corrupted on the way back, stats %+v", changed, st.ToClient)
	}
}

func TestReorder(t *testing.T) {
	srv := startServer(t, lo4, false, 0)
	p := newProxy(t, srv.addr(), Config{Reorder: 0.05, ReorderDelay: 20 * time.Millisecond, Seed: 9})
	const n = 1000
	sendPaced(t, listen(t, lo4), p, 0, n, 32)
	if !eventually(5*time.Second, func() bool { return srv.count() == n }) {
		t.Fatalf("target got %d of %d datagrams", srv.count(), n)
	}
	seen := make([]bool, n)
	late, high := 0, -1
	for _, b := range srv.received() {
		s := seqOf(b)
		if s < 0 || s >= n || seen[s] {
			t.Fatalf("unexpected or repeated datagram %d", s)
		}
		seen[s] = true
		if s < high {
			late++
		}
		high = max(high, s)
	}
	st := settle(t, p).ToTarget
	if late == 0 || st.Reordered == 0 || uint64(late) > st.Reordered {
		t.Errorf("%d datagrams arrived after a later one; stats %+v", late, st)
	}
}

func TestDelay(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	const delay = 20 * time.Millisecond
	p := newProxy(t, srv.addr(), Config{Delay: delay})
	c := listen(t, lo4)
	for i := range 10 {
		start := time.Now()
		r := roundTrips(t, c, p, 1, 1)
		// A lower bound only: a delay can never make a datagram early.
		if rtt := time.Since(start); rtt < 2*delay || !bytes.Equal(r[0], payload(0)) {
			t.Fatalf("round trip %d took %v, want at least %v", i, rtt, 2*delay)
		}
	}
}

func TestQueueBound(t *testing.T) {
	srv := startServer(t, lo4, false, 0)
	p := newProxy(t, srv.addr(), Config{Delay: time.Minute, MaxQueue: 10})
	sendPaced(t, listen(t, lo4), p, 0, 30, 30)
	var st DirStats
	eventually(5*time.Second, func() bool { st = p.Stats().ToTarget; return st.Dropped == 20 })
	if st.Dropped != 20 || st.Forwarded != 0 || srv.count() != 0 {
		t.Errorf("stats %+v, target got %d: want 10 queued and 20 dropped", st, srv.count())
	}
	// Close discards the queue without waiting for it.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRotatePort checks that the target sees the client move to new source
// ports while the client keeps getting every reply.
func TestRotatePort(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	p := newProxy(t, srv.addr(), Config{RotatePort: 100 * time.Millisecond})
	c := listen(t, lo4)
	start := time.Now()
	sent := 0
	for time.Since(start) < 500*time.Millisecond || srv.portCount() < 3 {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("only %d source ports in 10 s", srv.portCount())
		}
		r := roundTrips(t, c, p, 1, 1)
		if !bytes.Equal(r[0], payload(0)) {
			t.Fatal("reply corrupted")
		}
		sent++
		time.Sleep(2 * time.Millisecond)
	}
	st := settle(t, p)
	if st.Rotations < 2 || st.ToClient.Forwarded != uint64(sent) {
		t.Errorf("stats %+v after %d round trips", st, sent)
	}
}

// TestRotateGrace has replies arrive after the upstream socket they are
// addressed to was replaced: they must still reach the client.
func TestRotateGrace(t *testing.T) {
	srv := startServer(t, lo4, true, 150*time.Millisecond)
	p := newProxy(t, srv.addr(), Config{RotatePort: 50 * time.Millisecond})
	c := listen(t, lo4)
	const n = 20
	seen := make(map[int]bool)
	for i := range n {
		if _, err := c.WriteToUDPAddrPort(payload(i), p.Addr()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	buf := make([]byte, bufSize)
	for len(seen) < n {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%d of %d replies: %v (stats %+v)", len(seen), n, err, p.Stats())
		}
		seen[seqOf(buf[:m])] = true
	}
	if srv.portCount() < 3 || p.Stats().Rotations < 3 {
		t.Errorf("%d source ports, stats %+v: expected rotations during the run", srv.portCount(), p.Stats())
	}
}

func TestClients(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	p := newProxy(t, srv.addr(), Config{})
	var wg sync.WaitGroup
	conns := []*net.UDPConn{listen(t, lo4), listen(t, lo4), listen(t, lo4)}
	errs := make(chan string, len(conns))
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bufSize)
			for i := range 50 {
				c.WriteToUDPAddrPort(payload(i), p.Addr())
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				m, _, err := c.ReadFromUDPAddrPort(buf)
				if err != nil || !bytes.Equal(buf[:m], payload(i)) {
					errs <- "client lost or got a wrong reply"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if srv.portCount() != len(conns) {
		t.Errorf("target saw %d source ports, want one per client (%d)", srv.portCount(), len(conns))
	}
}

func TestEviction(t *testing.T) {
	srv := startServer(t, lo4, false, 0)
	p := newProxy(t, srv.addr(), Config{})
	conns := make([]*net.UDPConn, MaxClients+1)
	for i := range conns {
		conns[i] = listen(t, lo4)
		sendPaced(t, conns[i], p, i, i+1, 1)
	}
	sessions := func() (int, bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		first := conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
		return len(p.sessions), p.sessions[first] != nil
	}
	if n, first := sessions(); n != MaxClients || first {
		t.Fatalf("%d sessions (first client kept: %v), want %d without the least recently used", n, first, MaxClients)
	}
	// The evicted client comes back with a new session.
	sendPaced(t, conns[0], p, 0, 1, 1)
	if n, first := sessions(); n != MaxClients || !first {
		t.Fatalf("%d sessions (first client kept: %v) after it came back", n, first)
	}
	if !eventually(5*time.Second, func() bool { return srv.count() == MaxClients+2 }) {
		t.Errorf("target got %d datagrams, want %d", srv.count(), MaxClients+2)
	}
}

func TestSetConfig(t *testing.T) {
	srv := startServer(t, lo4, false, 0)
	p := newProxy(t, srv.addr(), Config{})
	c := listen(t, lo4)
	sendPaced(t, c, p, 0, 100, 16)
	p.SetConfig(Config{Loss: 1})
	sendPaced(t, c, p, 100, 200, 16)
	p.SetConfig(Config{RotatePort: 20 * time.Millisecond})
	sendPaced(t, c, p, 200, 300, 16)
	if !eventually(5*time.Second, func() bool { return srv.count() == 200 && p.Stats().Rotations > 0 }) {
		t.Fatalf("target got %d datagrams, stats %+v", srv.count(), p.Stats())
	}
	if st := settle(t, p).ToTarget; st.Lost != 100 || st.Forwarded != 200 {
		t.Errorf("stats %+v, want the middle 100 lost", st)
	}
	defer func() {
		if recover() == nil {
			t.Error("SetConfig accepted Loss 2")
		}
	}()
	p.SetConfig(Config{Loss: 2})
}

func TestInvalid(t *testing.T) {
	target := netip.MustParseAddrPort("127.0.0.1:9")
	for _, cfg := range []Config{
		{Loss: -0.1}, {Duplicate: 1.1}, {Reorder: math.NaN()}, {Corrupt: 2},
		{Delay: -1}, {ReorderDelay: -1}, {RotatePort: time.Millisecond}, {MaxQueue: -1},
	} {
		if p, err := New(lo4, target, cfg); err == nil {
			p.Close()
			t.Errorf("New accepted %+v", cfg)
		}
	}
	for _, a := range [][2]netip.AddrPort{{{}, target}, {lo4, {}}, {lo4, lo4}} {
		if p, err := New(a[0], a[1], Config{}); err == nil {
			p.Close()
			t.Errorf("New accepted listen %v, target %v", a[0], a[1])
		}
	}
}

// openFDs counts the process's open descriptors, or -1 where /proc is
// missing.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestClose stops a busy proxy, with rotations, retired sockets and queued
// datagrams, and checks that no goroutine or socket is left behind.
func TestClose(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	conns := []*net.UDPConn{listen(t, lo4), listen(t, lo4), listen(t, lo4)}
	goroutines, fds := runtime.NumGoroutine(), openFDs()

	p, err := New(lo4, srv.addr(), Config{
		RotatePort: 20 * time.Millisecond, Delay: 5 * time.Millisecond,
		Duplicate: 0.5, Reorder: 0.2, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, c := range conns {
		wg.Add(1)
		go func() { // sends until told to stop, replies are left unread
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c.WriteToUDPAddrPort(payload(i), p.Addr())
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	if !eventually(10*time.Second, func() bool { return p.Stats().Rotations >= 6 }) {
		t.Fatalf("no rotations: %+v", p.Stats())
	}
	// Stats and SetConfig race with Close on purpose.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			p.Stats()
			p.SetConfig(Config{RotatePort: 20 * time.Millisecond, Delay: time.Millisecond})
		}
	}()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(stop)
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	if !eventually(5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines }) {
		t.Errorf("%d goroutines after Close, %d before", runtime.NumGoroutine(), goroutines)
	}
	if fds >= 0 && !eventually(5*time.Second, func() bool { return openFDs() <= fds }) {
		t.Errorf("%d descriptors open after Close, %d before", openFDs(), fds)
	}
	again, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(p.Addr()))
	if err != nil {
		t.Fatalf("proxy port still taken after Close: %v", err)
	}
	again.Close()
}

// TestSizes sends datagrams of edge sizes, up to the largest UDP payload,
// through the immediate path and through the delay queue (both buffer
// classes).
func TestSizes(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	for _, cfg := range []Config{{}, {Delay: time.Millisecond}} {
		p := newProxy(t, srv.addr(), cfg)
		c := listen(t, lo4)
		buf := make([]byte, bufSize)
		for _, size := range []int{0, 1, 1400, smallBuf, smallBuf + 1, 65507} {
			want := bytes.Repeat([]byte{byte(size)}, size)
			if _, err := c.WriteToUDPAddrPort(want, p.Addr()); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil || !bytes.Equal(buf[:n], want) {
				t.Fatalf("%+v: %d-byte datagram came back as %d bytes (%v)", cfg, size, n, err)
			}
		}
	}
}
