package endpoint

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

func newPair(t *testing.T) (server, client *Endpoint) {
	t.Helper()
	return newPairConfig(t, mux.Config{})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// echo accepts streams on svc and echoes each until EOF.
func echo(svc *Service) {
	for {
		st, err := svc.Accept(context.Background())
		if err != nil {
			return
		}
		go func() {
			io.Copy(st, st)
			st.CloseWrite()
			st.Close()
		}()
	}
}

func TestEchoAndBulk(t *testing.T) {
	st, s, server, client := openEcho(t)
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	go func() {
		st.Write(data)
		st.CloseWrite()
	}()
	st.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo: %d of %d bytes, err %v", len(got), len(data), err)
	}
	st.Close()
	// A second dial reuses the session: one handshake per peer.
	s2, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil || s2 != s {
		t.Fatalf("second dial: %v, same session %v", err, s2 == s)
	}
}

func TestRefusedService(t *testing.T) {
	server, client := newPair(t)
	s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.OpenStream("ftp", 3)
	err = st.WaitAccepted(ctx(t))
	var ce *mux.ChannelError
	if !errors.As(err, &ce) || !ce.Refused || ce.Code != wire.RefuseNoService || ce.Reason != `no service "ftp"` {
		t.Fatalf("refusal: %v", err)
	}
}

func TestWrongKeyTimesOut(t *testing.T) {
	server, err := Listen("udp4", loopback, Config{Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close(0, "")
	client, _ := Listen("udp4", loopback, Config{})
	defer client.Close(0, "")
	wrong, _ := wire.GeneratePrivateKey()
	c, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err = client.Session(c, wrong.PublicKey(), server.LocalAddr())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial with a wrong key: %v", err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		server, client := newPair(t)
		svc, _ := server.Listen("")
		go echo(svc)
		s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			st, _ := s.OpenStream("", 3)
			st.Write([]byte("x"))
			st.CloseWrite()
			io.ReadAll(st)
			st.Close()
		}
		client.Close(wire.CloseNormal, "")
		server.Close(wire.CloseNormal, "")
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestRedialSameIdentity: a client that closes and redials with the same
// key again and again (its old session closing on the server as the new
// handshake arrives) never wedges the server: the server's Close returns.
// This once deadlocked on an inverted lock order (startSession took a
// session's lock under the endpoint's, a worker the reverse).
func TestRedialSameIdentity(t *testing.T) {
	server, err := Listen("udp4", loopback, Config{Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := server.Listen("")
	go echo(svc)
	key, _ := wire.GeneratePrivateKey()
	for i := 0; i < 300; i++ {
		client, err := Listen("udp4", loopback, Config{PrivateKey: key})
		if err != nil {
			t.Fatal(err)
		}
		s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
		if err != nil {
			t.Fatalf("redial %d: %v", i, err)
		}
		st, _ := s.OpenStream("", 3)
		st.Write([]byte("x"))
		st.CloseWrite()
		io.ReadAll(st)
		st.Close()
		s.Close(wire.CloseNormal, "bye")
		client.Close(wire.CloseNormal, "")
	}
	closed := make(chan struct{})
	go func() { server.Close(wire.CloseNormal, ""); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's Close did not return: its endpoint is deadlocked")
	}
}

// TestCookieKeptAcrossDials: a client that dials one server again and
// again, from one socket, exceeds the server's per-source handshake burst
// (5); the first cookie reply gives it a cookie, and every later dial
// carries it, so the server sends no further cookie reply (the client
// keeps no other cookie) and every dial succeeds.
func TestCookieKeptAcrossDials(t *testing.T) {
	server, client := newPair(t)
	for i := 0; i < 12; i++ {
		s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		s.Close(0, "")
	}
	client.mu.Lock()
	kept := client.cookiesNew
	client.mu.Unlock()
	if kept != 1 {
		t.Fatalf("%d cookies received over 12 dials, want 1 (the first, then carried over)", kept)
	}
}
