package net

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/udpproxy"
)

// udpGate is a Host served on UDP behind a proxy that can black UDP out,
// and on TCP at the proxy's port number: a server whose UDP path a
// firewall may block and unblock, as clients see it.
type udpGate struct {
	h    *Host
	px   *udpproxy.Proxy
	addr string // the Host's key at the proxy's address
	tcp  *keptListener
}

// keptListener keeps the connections it accepts, so that a test can break
// them from the server's side.
type keptListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *keptListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// breakAll closes every connection accepted so far and returns how many
// there were.
func (l *keptListener) breakAll() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	n := len(l.conns)
	l.conns = nil
	return n
}

func newUDPGate(t *testing.T) *udpGate {
	t.Helper()
	for try := 0; try < 10; try++ {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewHost(pc, Config{})
		if err != nil {
			t.Fatal(err)
		}
		px, err := udpproxy.New(netip.MustParseAddrPort("127.0.0.1:0"), pc.LocalAddr().(*net.UDPAddr).AddrPort(), udpproxy.Config{})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp4", px.Addr().String())
		if errors.Is(err, syscall.EADDRINUSE) {
			px.Close()
			h.Close()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		kept := &keptListener{Listener: ln}
		if err := h.ServeTCP(kept); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			h.Close()
			px.Close()
		})
		key := h.Addr().(*Addr).Key
		return &udpGate{h: h, px: px, addr: (&Addr{Key: key, Addr: px.Addr()}).String(), tcp: kept}
	}
	t.Fatal("no port free on both UDP and TCP")
	return nil
}

// dialBlocked serves an echo on a udpGate whose UDP is blocked for d,
// dials it (falling back to TCP) and checks that the session is on TCP.
func dialBlocked(t *testing.T, d time.Duration) (*udpGate, net.Conn) {
	t.Helper()
	g := newUDPGate(t)
	ln, err := g.h.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(ln)
	g.px.Blackout(d)
	dialer := &Dialer{}
	t.Cleanup(func() { dialer.Close() })
	c, err := dialer.Dial("haven4", g.addr)
	if err != nil {
		t.Fatalf("dial with UDP blocked: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if tr := c.(*Conn).Session().Transport(); tr != "tcp" {
		t.Fatalf("session transport %q with UDP blocked, want tcp", tr)
	}
	return g, c
}

// TestFallbackReturnsToUDP: a session that fell back to TCP because UDP
// was blocked moves back to UDP once UDP passes again, with a transfer
// running across the move byte for byte, and then carries its traffic
// over UDP both ways (the server moved too).
func TestFallbackReturnsToUDP(t *testing.T) {
	g, c := dialBlocked(t, time.Minute)
	s := c.(*Conn).Session()

	run := startEcho(c, patterned(32<<20, 7))
	g.px.Blackout(0) // the firewall opens
	deadline := time.Now().Add(time.Minute)
	for s.Transport() != "udp" {
		if time.Now().After(deadline) {
			run.resume()
			t.Fatal("the session did not return to UDP within a minute of UDP passing again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := g.px.Stats()
	run.finish(t, "echo across the move")
	after := g.px.Stats()
	// The second half, 16 MiB each way, went over UDP: hundreds of
	// datagrams both ways through the proxy (256 at the largest packets), not a few probes.
	if n := after.ToTarget.Forwarded - before.ToTarget.Forwarded; n < 100 {
		t.Errorf("%d datagrams client → server over UDP after the move, want the transfer's", n)
	}
	if n := after.ToClient.Forwarded - before.ToClient.Forwarded; n < 100 {
		t.Errorf("%d datagrams server → client over UDP after the move: the server stayed on TCP", n)
	}
	if n := s.PathChanges(); n < 1 {
		t.Errorf("PathChanges %d after the move, want at least 1", n)
	}
}

// TestFallbackSurvivesBrokenConnection: with UDP blocked throughout, the
// TCP connection a session fell back to is broken (the server closes it,
// as a middlebox's reset or a NAT rebinding would) in the middle of a
// transfer. The dialer connects again and moves the session to the new
// connection: the transfer completes byte for byte.
func TestFallbackSurvivesBrokenConnection(t *testing.T) {
	g, c := dialBlocked(t, time.Hour)
	s := c.(*Conn).Session()
	run := startEcho(c, patterned(32<<20, 3))
	run.waitEchoed(t, 1)
	if n := g.tcp.breakAll(); n != 1 {
		run.resume()
		t.Fatalf("the server had %d TCP connections when broken, want 1", n)
	}
	run.finish(t, "echo across the broken connection")
	if n := g.tcp.breakAll(); n != 1 {
		t.Fatalf("%d TCP connections after the break, want the 1 the dialer made again", n)
	}
	if tr := s.Transport(); tr != "tcp" {
		t.Fatalf("session transport %q, want tcp (UDP is still blocked)", tr)
	}
}

// echoRun sends data through an echo on c from two goroutines: the
// first half at once, the rest after resume; what comes back is counted
// as it arrives (echoed) and kept in a buffer grown once (a growing one
// stalls its reader with copies).
type echoRun struct {
	c           net.Conn
	data        []byte
	got         []byte
	echoed      atomic.Int64
	wrote, read chan error
	resumed     chan struct{}
	once        sync.Once
	// stall is the longest wait for a Read once data flowed, from
	// stallAt; read them after finish.
	stall   time.Duration
	stallAt time.Time
}

// startEcho starts an echoRun of data on c.
func startEcho(c net.Conn, data []byte) *echoRun {
	r := &echoRun{c: c, data: data, got: make([]byte, 0, len(data)),
		wrote: make(chan error, 1), read: make(chan error, 1), resumed: make(chan struct{})}
	half := len(data) / 2
	go func() {
		if _, err := c.Write(data[:half]); err != nil {
			r.wrote <- err
			return
		}
		<-r.resumed
		_, err := c.Write(data[half:])
		c.(*Conn).CloseWrite()
		r.wrote <- err
	}()
	go func() {
		buf := make([]byte, 256<<10)
		c.SetReadDeadline(time.Now().Add(time.Minute))
		last := time.Now()
		for {
			n, err := c.Read(buf)
			if now := time.Now(); len(r.got) > 0 && now.Sub(last) > r.stall {
				r.stall, r.stallAt = now.Sub(last), last
			}
			last = time.Now()
			r.got = append(r.got, buf[:n]...)
			r.echoed.Add(int64(n))
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				r.read <- err
				return
			}
		}
	}()
	return r
}

// resume lets the second half go.
func (r *echoRun) resume() { r.once.Do(func() { close(r.resumed) }) }

// waitEchoed waits (at most 2 minutes) until n bytes came back.
func (r *echoRun) waitEchoed(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); r.echoed.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			r.resume()
			t.Fatalf("%d of %d bytes echoed after 2 minutes", r.echoed.Load(), n)
		}
	}
}

// finish resumes, waits for both halves and checks the echo byte for byte.
func (r *echoRun) finish(t *testing.T, what string) {
	t.Helper()
	r.resume()
	if err := <-r.wrote; err != nil {
		t.Fatalf("%s: write: %v", what, err)
	}
	if err := <-r.read; err != nil || !bytes.Equal(r.got, r.data) {
		t.Fatalf("%s: %d of %d bytes echoed, %v", what, len(r.got), len(r.data), err)
	}
}

// patterned returns n bytes of a pattern seeded by k.
func patterned(n, k int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*k + i>>(k%13+3))
	}
	return b
}
