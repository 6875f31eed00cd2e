package dialer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/havenproto/haven/compat"
	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/internal/udpproxy"
	"github.com/havenproto/haven/wire"
)

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

// fallbackServer is a listener served over UDP, behind a proxy that
// tests can black out, and over TCP at the proxy's port number (a second
// link of the same endpoint): what a Pool dials sees one server whose UDP
// path may be dark.
type fallbackServer struct {
	udp      *endpoint.Endpoint
	px       *udpproxy.Proxy
	accepted *atomic.Int64 // TCP connections accepted
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func newFallbackServer(t *testing.T) *fallbackServer {
	t.Helper()
	key, err := wire.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	udp, err := endpoint.Listen("udp4", loopback, endpoint.Config{PrivateKey: key, Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close(wire.CloseNormal, "") })
	for range 8 { // the proxy's port number may be taken on TCP
		px, err := udpproxy.New(loopback, udp.LocalAddr(), udpproxy.Config{})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp4", px.Addr().String())
		if errors.Is(err, syscall.EADDRINUSE) {
			px.Close()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted := new(atomic.Int64)
		st, err := compat.ListenStream(countingListener{ln, accepted}, compat.StreamConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := udp.AddTransport(st); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { px.Close() })
		return &fallbackServer{udp: udp, px: px, accepted: accepted}
	}
	t.Fatal("no port free on both UDP and TCP")
	return nil
}

// TestConcurrentDialsShareTheFallback dials one server whose UDP path is
// dark from many goroutines at once, each with a long deadline. Every
// dial must succeed after the fallback delay, with the same session and
// over one TCP connection (one race per peer, not one per dial), and that
// session must still be live
// after all returned: a race that lost must not close a connection
// another dial was given.
func TestConcurrentDialsShareTheFallback(t *testing.T) {
	srv := newFallbackServer(t)
	srv.px.Blackout(time.Minute)
	p := New(endpoint.Config{}, netip.AddrPort{})
	defer p.Close()
	const dials = 16
	var (
		wg       sync.WaitGroup
		sessions [dials]*endpoint.Session
		errs     [dials]error
	)
	deadline := time.Now().Add(20 * time.Second)
	for i := range dials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sessions[i], _, errs[i] = p.Session(context.Background(), deadline, "udp4", srv.udp.PublicKey(), srv.px.Addr(), endpoint.FirstService{})
		}()
	}
	wg.Wait()
	for i := range dials {
		if errs[i] != nil {
			t.Fatalf("dial %d: %v", i, errs[i])
		}
		if sessions[i] != sessions[0] {
			t.Fatalf("dial %d got another session than dial 0", i)
		}
	}
	if !sessions[0].Stream() {
		t.Fatal("the session is not over TCP although UDP is dark")
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Fatalf("the server accepted %d TCP connections for %d concurrent dials, want 1", n, dials)
	}
	srv.px.Blackout(0) // UDP comes back: a new dial still finds the TCP session
	s, _, err := p.Session(context.Background(), time.Now().Add(20*time.Second), "udp4", srv.udp.PublicKey(), srv.px.Addr(), endpoint.FirstService{})
	if err != nil || s != sessions[0] {
		t.Fatalf("dial after the fallback: %v (same session: %v)", err, s == sessions[0])
	}
}

// TestFallbackClosedAfterReturn: once the session that fell back to TCP
// has returned to UDP, the pool closes the TCP connection it no longer
// uses, at keepUp's next idle check (every 30 s, as users get it: the test
// waits for it).
func TestFallbackClosedAfterReturn(t *testing.T) {
	srv := newFallbackServer(t)
	srv.px.Blackout(time.Minute)
	p := New(endpoint.Config{}, netip.AddrPort{})
	defer p.Close()
	s, _, err := p.Session(context.Background(), time.Now().Add(20*time.Second), "udp4", srv.udp.PublicKey(), srv.px.Addr(), endpoint.FirstService{})
	if err != nil || !s.Stream() {
		t.Fatalf("dial with UDP dark: %v (over TCP: %v)", err, err == nil && s.Stream())
	}
	if n := fallbacks(p); n != 1 {
		t.Fatalf("%d fallback connections, want 1", n)
	}
	srv.px.Blackout(0)
	for deadline := time.Now().Add(idleCheck + 30*time.Second); s.Stream() || fallbacks(p) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v after UDP came back: over TCP %v, %d fallback connections", idleCheck+30*time.Second, s.Stream(), fallbacks(p))
		}
	}
	if s.Err() != nil || p.eps["udp4"].Live(srv.udp.PublicKey()) != s {
		t.Fatalf("the session ended with its TCP connection: %v", s.Err())
	}
}

// fallbacks returns how many fallback connections p holds.
func fallbacks(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.fallbacks)
}

// TestDialsTakePreparedInitiations: a successful dial has the next
// initiation to the same peer prepared (secure.PrepareFor), and the next
// dials take it, on a new socket (a new Pool) and on a kept one (the same
// Pool after its session closed); every dial completes.
func TestDialsTakePreparedInitiations(t *testing.T) {
	key, err := wire.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := endpoint.Listen("udp4", loopback, endpoint.Config{PrivateKey: key, Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(wire.CloseNormal, "")
	dial := func(p *Pool) *endpoint.Session {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s, _, err := p.Session(ctx, time.Time{}, "udp4", srv.PublicKey(), srv.LocalAddr(), endpoint.FirstService{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	p := New(endpoint.Config{}, netip.AddrPort{})
	dial(p)
	p.Close()
	before := secure.PreparedTaken()
	p = New(endpoint.Config{}, netip.AddrPort{}) // a new socket
	defer p.Close()
	s := dial(p)
	if n := secure.PreparedTaken() - before; n != 1 {
		t.Fatalf("a dial on a new socket took %d prepared initiations, want 1", n)
	}
	s.Close(wire.CloseNormal, "")
	dial(p) // the kept socket
	if n := secure.PreparedTaken() - before; n != 2 {
		t.Fatalf("a dial on a kept socket took %d prepared initiations in all, want 2", n)
	}
}
