package udpproxy

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var (
	lo4 = netip.MustParseAddrPort("127.0.0.1:0")
	lo6 = netip.MustParseAddrPort("[::1]:0")
)

// payloadSize is the size of every test datagram.
const payloadSize = 64

// payload is datagram seq: seq in the first 8 bytes, then a pattern derived
// from it, so a changed bit anywhere is visible.
func payload(seq int) []byte {
	b := make([]byte, payloadSize)
	binary.BigEndian.PutUint64(b, uint64(seq))
	for j := 8; j < len(b); j++ {
		b[j] = byte(seq*31 + j*7)
	}
	return b
}

// seqOf reads the sequence number of a test datagram.
func seqOf(b []byte) int { return int(binary.BigEndian.Uint64(b)) }

// eventually polls cond every millisecond until it holds or timeout passes
// and reports whether it held.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// listen opens a loopback UDP socket with roomy buffers, closed at cleanup.
func listen(t *testing.T, at netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(at))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(1 << 20)
	c.SetWriteBuffer(1 << 20)
	t.Cleanup(func() { c.Close() })
	return c
}

// server is the proxy's target: it records every datagram and its source
// port, and optionally echoes it back after echoDelay.
type server struct {
	conn *net.UDPConn
	wg   sync.WaitGroup

	mu    sync.Mutex
	got   [][]byte
	ports map[uint16]bool
}

type echoReq struct {
	at  time.Time
	to  netip.AddrPort
	pkt []byte
}

// startServer starts a target on at. With echo set it returns every
// datagram to its sender, echoDelay later.
func startServer(t *testing.T, at netip.AddrPort, echo bool, echoDelay time.Duration) *server {
	t.Helper()
	s := &server{conn: listen(t, at), ports: map[uint16]bool{}}
	var later chan echoReq
	if echo && echoDelay > 0 {
		later = make(chan echoReq, 4096)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for r := range later {
				time.Sleep(time.Until(r.at))
				s.conn.WriteToUDPAddrPort(r.pkt, r.to)
			}
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if later != nil {
			defer close(later)
		}
		buf := make([]byte, bufSize)
		for {
			n, src, err := s.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pkt := append([]byte(nil), buf[:n]...)
			s.mu.Lock()
			s.got = append(s.got, pkt)
			s.ports[src.Port()] = true
			s.mu.Unlock()
			switch {
			case later != nil:
				later <- echoReq{time.Now().Add(echoDelay), src, pkt}
			case echo:
				s.conn.WriteToUDPAddrPort(pkt, src)
			}
		}
	}()
	t.Cleanup(func() {
		s.conn.Close()
		s.wg.Wait()
	})
	return s
}

func (s *server) addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// received returns a copy of the datagrams received so far, in order.
func (s *server) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.got...)
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *server) portCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ports)
}

// newProxy starts a proxy on IPv4 loopback, closed at cleanup.
func newProxy(t *testing.T, target netip.AddrPort, cfg Config) *Proxy {
	t.Helper()
	p, err := New(lo4, target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// sendPaced sends payloads [from, to) from c through p, never more than
// window ahead of what the proxy has read, so no socket buffer overflows
// and the proxy sees the datagrams in order.
func sendPaced(t *testing.T, c *net.UDPConn, p *Proxy, from, to, window int) {
	t.Helper()
	base := int(p.Stats().ToTarget.Received) - from
	for i := from; i < to; i++ {
		if !eventually(10*time.Second, func() bool {
			return i-(int(p.Stats().ToTarget.Received)-base) < window
		}) {
			t.Fatalf("proxy stalled at datagram %d: %+v", i, p.Stats())
		}
		if _, err := c.WriteToUDPAddrPort(payload(i), p.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	if !eventually(10*time.Second, func() bool { return int(p.Stats().ToTarget.Received)-base == to }) {
		t.Fatalf("proxy read %d of %d datagrams", int(p.Stats().ToTarget.Received)-base, to)
	}
}

// roundTrips sends payloads 0..n-1 from c through p to an echo server,
// keeping window outstanding, and returns the n replies in arrival order.
// It fails if a reply does not come within 5 s.
func roundTrips(t *testing.T, c *net.UDPConn, p *Proxy, n, window int) [][]byte {
	t.Helper()
	send := func(i int) {
		if _, err := c.WriteToUDPAddrPort(payload(i), p.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	next := 0
	for ; next < min(window, n); next++ {
		send(next)
	}
	replies := make([][]byte, 0, n)
	buf := make([]byte, bufSize)
	for len(replies) < n {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d replies: %v (stats %+v)", len(replies), err, p.Stats())
		}
		if src.Port() != p.Addr().Port() {
			t.Fatalf("reply from %v, want the proxy %v", src, p.Addr())
		}
		replies = append(replies, append([]byte(nil), buf[:m]...))
		if next < n {
			send(next)
			next++
		}
	}
	return replies
}

// bitDiff counts the bits that differ between two equally long slices.
func bitDiff(a, b []byte) int {
	d := 0
	for i := range a {
		x := a[i] ^ b[i]
		for ; x != 0; x &= x - 1 {
			d++
		}
	}
	return d
}

// balanced reports whether every copy of every datagram read so far has
// been accounted for (forwarded, dropped or failed), in one direction.
func balanced(d DirStats) bool {
	return d.Received-d.Lost+d.Duplicated == d.Forwarded+d.Dropped+d.Failed
}

// settle waits until the proxy has finished with every datagram it has
// read, in both directions, and returns its stats. Counters are updated
// after a write returns, so a receiver can see a datagram before the
// proxy counts it; tests compare counters only after settle.
func settle(t *testing.T, p *Proxy) Stats {
	t.Helper()
	var st Stats
	if !eventually(5*time.Second, func() bool {
		st = p.Stats()
		return balanced(st.ToTarget) && balanced(st.ToClient)
	}) {
		t.Fatalf("proxy did not settle: %+v", st)
	}
	return st
}
