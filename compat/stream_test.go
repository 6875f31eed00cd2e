package compat

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/wire"
)

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// streamServer runs an accepting endpoint on a listening stream transport
// on loopback, with an echo service.
func streamServer(t *testing.T) (*endpoint.Endpoint, *StreamTransport) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st, err := ListenStream(ln, StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	server, err := endpoint.NewWithTransport(st, endpoint.Config{Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(wire.CloseNormal, "") })
	svc, err := server.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			s, err := svc.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				io.Copy(s, s)
				s.CloseWrite()
				s.Close()
			}()
		}
	}()
	return server, st
}

// TestStreamEndpointEcho: a session whose every packet travels over TCP
// (the same handshake, channels and messages as over UDP, framed by the
// length field) echoes 16 MiB byte-exact, in both constructions.
func TestStreamEndpointEcho(t *testing.T) {
	server, _ := streamServer(t)
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>13)
	}
	for _, suite := range []wire.Suite{wire.SuiteChaChaPoly, wire.SuiteAESGCM} {
		ct, err := DialStream(testCtx(t), netip.AddrPort{}, server.LocalAddr(), StreamConfig{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := endpoint.Config{}
		cfg.Handshake.Suite = suite
		client, err := endpoint.NewWithTransport(ct, cfg)
		if err != nil {
			t.Fatal(err)
		}
		s, err := client.Session(testCtx(t), server.PublicKey(), server.LocalAddr())
		if err != nil {
			t.Fatalf("%v: session over TCP: %v", suite, err)
		}
		st, err := s.OpenStream("", 3)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			st.Write(data)
			st.CloseWrite()
		}()
		st.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(st)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%v: echo over TCP: %d of %d bytes, %v", suite, len(got), len(data), err)
		}
		st.Close()
		client.Close(wire.CloseNormal, "")
	}
}

// readsNothing reports whether the server closed c without writing a
// byte: the read ends with io.EOF (or a reset) and no data.
func readsNothing(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestStreamHostile: a listening transport closes, without writing a
// byte, a connection that sends something other than Haven (garbage, a
// packet of another protocol id, a malformed length), and keeps at most
// MaxConnsPerSource connections from one address.
func TestStreamHostile(t *testing.T) {
	server, st := streamServer(t)
	addr := server.LocalAddr().String()
	good := packetOf(wire.SuiteChaChaPoly, 64, 1)
	Frame(good)
	foreign := bytes.Clone(good)
	copy(foreign, []byte("NOTHAVEN"))
	zeroLen := bytes.Clone(good)
	wire.PutLength(zeroLen, 0)
	for name, b := range map[string][]byte{
		"garbage":          []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\nand some more bytes to pass forty"),
		"wrong id":         foreign,
		"zero length":      zeroLen,
		"length too large": append(bytes.Clone(good[:wire.HeaderLen-30]), bytes.Repeat([]byte{0xff}, 60)...),
	} {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(b)
		if !readsNothing(t, c) {
			t.Errorf("%s: the connection was answered or left open", name)
		}
		c.Close()
	}
	// A packet that frames well but does not authenticate is dropped by
	// the endpoint, not answered; the connection stays.
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(good)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Fatalf("a forged packet got %d bytes back, %v", n, err)
	}

	var extra []net.Conn
	defer func() {
		for _, c := range extra {
			c.Close()
		}
	}()
	for i := 0; i < MaxConnsPerSource+4; i++ {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st.mu.Lock()
		n := st.perSource[netip.MustParseAddr("127.0.0.1")]
		st.mu.Unlock()
		if n == MaxConnsPerSource {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections kept from one address, want %d", n, MaxConnsPerSource)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamCloseLeavesNothing: closing the endpoints (and so the
// transports) stops every goroutine they started.
func TestStreamCloseLeavesNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ln, _ := net.Listen("tcp4", "127.0.0.1:0")
		lt, err := ListenStream(ln, StreamConfig{})
		if err != nil {
			t.Fatal(err)
		}
		server, _ := endpoint.NewWithTransport(lt, endpoint.Config{Accept: true})
		ct, err := DialStream(testCtx(t), netip.AddrPort{}, server.LocalAddr(), StreamConfig{})
		if err != nil {
			t.Fatal(err)
		}
		client, _ := endpoint.NewWithTransport(ct, endpoint.Config{})
		if _, err := client.Session(testCtx(t), server.PublicKey(), server.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		client.Close(wire.CloseNormal, "")
		server.Close(wire.CloseNormal, "")
	}()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+maxParked() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+maxParked() {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after close, %d before:\n%s", g, before, buf[:runtime.Stack(buf, true)])
	}
}

// maxParked is how many shared run workers may stay parked for other
// endpoints of the process (the endpoint package's pool).
func maxParked() int { return runtime.GOMAXPROCS(0) }
