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

// TestFallbackReturnsToUDP: a session that fell back to TCP because UDP
// was blocked moves back to UDP once UDP passes again, with a transfer
// running across the move byte for byte, and then carries its traffic
// over UDP both ways (the server moved too).
func TestFallbackReturnsToUDP(t *testing.T) {
	g := newUDPGate(t)
	ln, err := g.h.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(ln)
	g.px.Blackout(time.Minute)

	d := &Dialer{}
	defer d.Close()
	c, err := d.Dial("haven4", g.addr)
	if err != nil {
		t.Fatalf("dial with UDP blocked: %v", err)
	}
	defer c.Close()
	s := c.(*Conn).Session()
	if tr := s.Transport(); tr != "tcp" {
		t.Fatalf("session transport %q with UDP blocked, want tcp", tr)
	}

	data := make([]byte, 32<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	half := len(data) / 2
	wrote := make(chan error, 1)
	moved := make(chan struct{})
	go func() {
		if _, err := c.Write(data[:half]); err != nil {
			wrote <- err
			return
		}
		<-moved
		_, err := c.Write(data[half:])
		c.(*Conn).CloseWrite()
		wrote <- err
	}()
	var got bytes.Buffer
	read := make(chan error, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		_, err := io.Copy(&got, c)
		read <- err
	}()

	g.px.Blackout(0) // the firewall opens
	deadline := time.Now().Add(time.Minute)
	for s.Transport() != "udp" {
		if time.Now().After(deadline) {
			close(moved)
			t.Fatal("the session did not return to UDP within a minute of UDP passing again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := g.px.Stats()
	close(moved)
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := <-read; err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("echo across the move: %d of %d bytes, %v", got.Len(), len(data), err)
	}
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
	g := newUDPGate(t)
	ln, err := g.h.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(ln)
	g.px.Blackout(time.Hour)

	d := &Dialer{}
	defer d.Close()
	c, err := d.Dial("haven4", g.addr)
	if err != nil {
		t.Fatalf("dial with UDP blocked: %v", err)
	}
	defer c.Close()
	s := c.(*Conn).Session()
	if tr := s.Transport(); tr != "tcp" {
		t.Fatalf("session transport %q with UDP blocked, want tcp", tr)
	}
	data := make([]byte, 32<<20)
	for i := range data {
		data[i] = byte(i*3 + i>>9)
	}
	half := len(data) / 2
	wrote := make(chan error, 1)
	broken := make(chan struct{})
	go func() {
		if _, err := c.Write(data[:half]); err != nil {
			wrote <- err
			return
		}
		<-broken
		_, err := c.Write(data[half:])
		c.(*Conn).CloseWrite()
		wrote <- err
	}()
	got := &countingBuffer{}
	read := make(chan error, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		_, err := io.Copy(got, c)
		read <- err
	}()
	for deadline := time.Now().Add(time.Minute); got.n.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nothing echoed within a minute")
		}
	}
	if n := g.tcp.breakAll(); n != 1 {
		t.Fatalf("the server had %d TCP connections when broken, want 1", n)
	}
	close(broken)
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := <-read; err != nil || !bytes.Equal(got.b.Bytes(), data) {
		t.Fatalf("echo across the broken connection: %d of %d bytes, %v", got.b.Len(), len(data), err)
	}
	if n := g.tcp.breakAll(); n != 1 {
		t.Fatalf("%d TCP connections after the break, want the 1 the dialer made again", n)
	}
	if tr := s.Transport(); tr != "tcp" {
		t.Fatalf("session transport %q, want tcp (UDP is still blocked)", tr)
	}
}

// countingBuffer is a bytes.Buffer written by one goroutine whose length
// another may watch.
type countingBuffer struct {
	b bytes.Buffer
	n atomic.Int64
}

func (w *countingBuffer) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return w.b.Write(p)
}
