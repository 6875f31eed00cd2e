package net

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/udpproxy"
	"github.com/havenproto/haven/mux"
)

// allowList is a Config.Authorize policy that a test edits while the
// server runs.
type allowList struct {
	mu   sync.Mutex // Authorize runs on the server's reader
	keys map[PublicKey]bool
}

func newAllowList(keys ...PublicKey) *allowList {
	l := &allowList{keys: map[PublicKey]bool{}}
	for _, k := range keys {
		l.keys[k] = true
	}
	return l
}

func (l *allowList) allows(k PublicKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keys[k]
}

func (l *allowList) remove(k PublicKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, k)
}

// newKey returns a fresh private key.
func newKey(t *testing.T) PrivateKey {
	t.Helper()
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// authorizedEcho starts an echo listener that admits the keys of list, and
// a transparent counting proxy in front of it; it returns the address to
// dial (the listener's key at the proxy) and the proxy.
func authorizedEcho(t *testing.T, list *allowList) (string, *udpproxy.Proxy) {
	t.Helper()
	ln := echoListener(t, ListenConfig{Config: Config{Authorize: list.allows}})
	return proxyTo(t, ln, udpproxy.Config{})
}

// TestAuthorizeUnlistedGetsSilence: with Config.Authorize set, an unlisted
// key's Dial times out (a net.Error with Timeout) and the server sends it
// not one byte, while a listed key's Dial works through the same proxy.
func TestAuthorizeUnlistedGetsSilence(t *testing.T) {
	listed, unlisted := newKey(t), newKey(t)
	addr, px := authorizedEcho(t, newAllowList(listed.PublicKey()))

	// The caller's deadline, not a protocol timer: the handshake keeps
	// its default timeout and retransmissions.
	d := &Dialer{Config: Config{PrivateKey: unlisted}, Timeout: 3 * time.Second}
	defer d.Close()
	c, err := d.Dial("haven4", addr)
	if err == nil {
		c.Close()
		t.Fatal("an unlisted key connected")
	}
	var op *net.OpError
	var ne net.Error
	if !errors.As(err, &op) || op.Op != "dial" || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("unlisted key's dial: %v (%T), want a *net.OpError that is a timeout", err, err)
	}
	st := px.Stats()
	if st.ToTarget.Forwarded == 0 {
		t.Fatal("no initiation reached the server: the test proves nothing")
	}
	if st.ToClient.Received != 0 {
		t.Fatalf("the server answered an unlisted key with %d datagrams", st.ToClient.Received)
	}

	ok := &Dialer{Config: Config{PrivateKey: listed}, Timeout: 10 * time.Second}
	defer ok.Close()
	c, err = ok.Dial("haven4", addr)
	if err != nil {
		t.Fatalf("listed key: %v", err)
	}
	defer c.Close()
	roundTrip(t, c, "listed")
	if px.Stats().ToClient.Received == 0 {
		t.Fatal("the proxy counted no reply to the listed key either")
	}
}

// TestAuthorizeDialerRefusesServer: a Dialer whose Config.Authorize refuses
// the server fails the Dial at once with a *net.OpError wrapping an
// *AuthorizeError, and sends nothing.
func TestAuthorizeDialerRefusesServer(t *testing.T) {
	addr, px := authorizedEcho(t, newAllowList())
	server, err := ResolveAddr("haven4", addr)
	if err != nil {
		t.Fatal(err)
	}
	var asked []PublicKey
	d := &Dialer{Timeout: 10 * time.Second, Config: Config{Authorize: func(k PublicKey) bool {
		asked = append(asked, k)
		return false
	}}}
	defer d.Close()
	c, err := d.Dial("haven4", addr)
	if err == nil {
		c.Close()
		t.Fatal("dialed a refused server")
	}
	var op *net.OpError
	var ae *AuthorizeError
	if !errors.As(err, &op) || !errors.As(err, &ae) || ae.Peer != server.Key || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("refused server: %v (%T), want a *net.OpError wrapping an *AuthorizeError for %s", err, err, server.Key)
	}
	if len(asked) != 1 || asked[0] != server.Key {
		t.Fatalf("Authorize asked about %v, want the server's key", asked)
	}
	if n := px.Stats().ToTarget.Received; n != 0 {
		t.Fatalf("the refused dial sent %d datagrams", n)
	}
}

// TestHostCloseSessions: after a key is removed from the policy,
// Host.CloseSessions ends that key's session (its connection fails with
// the server's close) and leaves another key's session alone.
func TestHostCloseSessions(t *testing.T) {
	a, b := newKey(t), newKey(t)
	list := newAllowList(a.PublicKey(), b.PublicKey())
	lc := ListenConfig{Config: Config{Authorize: list.allows}}
	h, err := lc.ListenHost(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ln, err := h.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	go echoServer(ln)
	conns := make([]net.Conn, 2)
	for i, k := range []PrivateKey{a, b} {
		d := &Dialer{Config: Config{PrivateKey: k}, Timeout: 10 * time.Second}
		defer d.Close()
		if conns[i], err = d.Dial("haven4", h.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
		roundTrip(t, conns[i], "hello")
	}
	list.remove(a.PublicKey())
	n := h.CloseSessions(func(k PublicKey) bool { return !list.allows(k) }, CloseShuttingDown, "key no longer authorized")
	if n != 1 {
		t.Fatalf("CloseSessions closed %d sessions, want 1", n)
	}
	conns[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadFull(conns[0], make([]byte, 1))
	var ce *mux.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseShuttingDown || ce.Reason != "key no longer authorized" {
		t.Fatalf("removed key's connection: %v, want the server's close", err)
	}
	roundTrip(t, conns[1], "still here")
}

// TestAuthorizeNoGoroutineLeak: refused handshakes on both sides, and
// sessions closed by CloseSessions, leave no goroutine behind once
// everything is closed.
func TestAuthorizeNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		listed := newKey(t)
		list := newAllowList(listed.PublicKey())
		lc := ListenConfig{Config: Config{Authorize: list.allows}}
		h, err := lc.ListenHost(context.Background(), "haven4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		ln, _ := h.Listen("")
		go echoServer(ln)
		stranger := &Dialer{Timeout: time.Second}
		defer stranger.Close()
		if _, err := stranger.Dial("haven4", h.Addr().String()); err == nil {
			t.Fatal("an unlisted key connected")
		}
		picky := &Dialer{Config: Config{Authorize: func(PublicKey) bool { return false }}}
		defer picky.Close()
		if _, err := picky.Dial("haven4", h.Addr().String()); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("refused server: %v", err)
		}
		d := &Dialer{Config: Config{PrivateKey: listed}, Timeout: 10 * time.Second}
		defer d.Close()
		c, err := d.Dial("haven4", h.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "x")
		list.remove(listed.PublicKey())
		if n := h.CloseSessions(func(k PublicKey) bool { return !list.allows(k) }, CloseShuttingDown, ""); n != 1 {
			t.Fatalf("CloseSessions closed %d", n)
		}
	}()
	checkGoroutines(t, before)
}

// TestAuthorizePacketConnRefusesPeer: WriteTo a peer this side's own
// Authorize refuses fails at once with a *net.OpError wrapping an
// *AuthorizeError, and sends nothing (it used to succeed and drop).
func TestAuthorizePacketConnRefusesPeer(t *testing.T) {
	addr, px := authorizedEcho(t, newAllowList())
	to, err := ResolveAddr("haven4", addr)
	if err != nil {
		t.Fatal(err)
	}
	lc := ListenConfig{Config: Config{Authorize: func(PublicKey) bool { return false }}}
	pc, err := lc.ListenPacket(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, err = pc.WriteTo([]byte("hello"), to)
	var op *net.OpError
	var ae *AuthorizeError
	if !errors.As(err, &op) || !errors.As(err, &ae) || ae.Peer != to.Key {
		t.Fatalf("WriteTo a refused peer: %v, want a *net.OpError wrapping an *AuthorizeError", err)
	}
	if n := px.Stats().ToTarget.Received; n != 0 {
		t.Fatalf("WriteTo a refused peer sent %d datagrams", n)
	}
}
