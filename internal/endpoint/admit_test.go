package endpoint

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// keySet is an Authorize policy that can change while the endpoint runs.
type keySet struct {
	mu   sync.Mutex // Authorize runs on the reader while the test edits the set
	keys map[wire.PublicKey]bool
}

func (k *keySet) allows(p wire.PublicKey) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys[p]
}

func (k *keySet) set(p wire.PublicKey, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[p] = on
}

// tableSize counts the entries of the server's session and dial tables,
// reserved ephemeral values included.
func tableSize(ep *Endpoint) int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return len(ep.sessions) + len(ep.byPeer) + len(ep.dials) + len(ep.dialing)
}

// newClient opens a client endpoint with a fresh identity.
func newClient(t *testing.T, cfg Config) *Endpoint {
	t.Helper()
	c, err := Listen("udp4", loopback, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(wire.CloseNormal, "") })
	return c
}

// echoMsg opens a stream on s and checks that msg comes back.
func echoMsg(t *testing.T, s *Session, msg string) *Stream {
	t.Helper()
	st, err := s.OpenStream("", 3)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := st.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo %q: %q, %v", msg, buf, err)
	}
	return st
}

// TestAuthorize: an unlisted key gets no session and leaves nothing in the
// server's tables; listed keys get sessions; CloseSessions after a key is
// removed closes that key's session and no other; a client whose own
// Authorize refuses the server fails at once with secure.ErrUnauthorized.
func TestAuthorize(t *testing.T) {
	allowed := &keySet{keys: map[wire.PublicKey]bool{}}
	server, err := Listen("udp4", loopback, Config{Accept: true, Authorize: allowed.allows})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close(wire.CloseNormal, "")
	svc, _ := server.Listen("")
	go echo(svc)
	a, b, stranger := newClient(t, Config{}), newClient(t, Config{}), newClient(t, Config{})
	allowed.set(a.PublicKey(), true)
	allowed.set(b.PublicKey(), true)

	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := stranger.Session(c, server.PublicKey(), server.LocalAddr()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unlisted key: %v, want a timeout", err)
	}
	if n := tableSize(server); n != 0 {
		t.Fatalf("unlisted key left %d table entries on the server", n)
	}

	sa, err := a.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	sta := echoMsg(t, sa, "a")
	stb := echoMsg(t, sb, "b")

	allowed.set(a.PublicKey(), false)
	const code = wire.CloseApplicationLo + 7
	if n := server.CloseSessions(func(k wire.PublicKey) bool { return !allowed.allows(k) }, code, "revoked"); n != 1 {
		t.Fatalf("CloseSessions closed %d sessions, want 1", n)
	}
	var ce *mux.CloseError
	if _, err := sta.Read(make([]byte, 1)); !errors.As(err, &ce) || ce.Code != code || !ce.Remote {
		t.Fatalf("removed key's stream: %v, want the server's close %#x", err, code)
	}
	if _, err := stb.Write([]byte("still")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(stb, buf); err != nil || string(buf) != "still" {
		t.Fatalf("listed key's stream after CloseSessions: %q, %v", buf, err)
	}

	// The client side: a policy that refuses the server fails a dial at
	// once, and refuses to reuse a session made before it changed.
	refuseAll := newClient(t, Config{Authorize: func(wire.PublicKey) bool { return false }})
	if _, err := refuseAll.Session(ctx(t), server.PublicKey(), server.LocalAddr()); !errors.Is(err, secure.ErrUnauthorized) {
		t.Fatalf("client refusing the server: %v", err)
	}
	servers := &keySet{keys: map[wire.PublicKey]bool{server.PublicKey(): true}}
	picky := newClient(t, Config{Authorize: servers.allows})
	allowed.set(picky.PublicKey(), true)
	sp, err := picky.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	echoMsg(t, sp, "p")
	servers.set(server.PublicKey(), false)
	if _, err := picky.Session(ctx(t), server.PublicKey(), server.LocalAddr()); !errors.Is(err, secure.ErrUnauthorized) {
		t.Fatalf("client no longer admitting the server: %v", err)
	}
}
