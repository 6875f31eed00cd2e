package endpoint

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/internal/udp"
	"github.com/havenproto/haven/internal/udpproxy"
	"github.com/havenproto/haven/wire"
)

// TestWaiterOutlivesOwnersDeadline checks that a dial which joined
// another's handshake is not ended by the other's limits: when the owner
// gives up (here its context is cancelled; a deadline is handled alike),
// the waiter dials afresh within its own. (A Pool's first UDP attempt has
// a deadline of dialer.FallbackDelay; a concurrent dial with a long
// timeout used to fail with it.)
func TestWaiterOutlivesOwnersDeadline(t *testing.T) {
	server, client := newPair(t)
	px, err := udpproxy.New(loopback, server.LocalAddr(), udpproxy.Config{Loss: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	peer := server.PublicKey()

	owner := make(chan error, 1)
	ownerCtx, giveUp := context.WithCancel(context.Background())
	defer giveUp()
	go func() {
		_, err := client.SessionAhead(ownerCtx, time.Now().Add(time.Minute), peer, px.Addr(), secure.EphemeralAhead{}, FirstService{})
		owner <- err
	}()
	waitFor(t, "the owner's dial", func() bool {
		client.mu.Lock()
		defer client.mu.Unlock()
		return client.dialing[dialKey{peer, &client.primary}] != nil
	})
	waiter := make(chan error, 1)
	var got *Session
	go func() {
		s, err := client.Session(ctx(t), peer, px.Addr())
		got = s
		waiter <- err
	}()
	waitFor(t, "the waiter to join", func() bool {
		client.mu.Lock()
		defer client.mu.Unlock()
		d := client.dialing[dialKey{peer, &client.primary}]
		return d != nil && d.done != nil
	})
	giveUp()
	if err := <-owner; !errors.Is(err, context.Canceled) {
		t.Fatalf("owner's dial through a dead path: %v, want its cancellation", err)
	}
	px.SetConfig(udpproxy.Config{}) // the path heals
	if err := <-waiter; err != nil {
		t.Fatalf("waiter with 20 s to go: %v", err)
	}
	if got == nil || client.Live(peer) != got {
		t.Fatal("the waiter's session is not the client's live session with the peer")
	}
}

// TestCloseWithReservedEphemeral closes an endpoint while a dial has
// reserved an ephemeral value (a nil entry in the session table) and not
// yet taken it: Close must pass over the reservation.
func TestCloseWithReservedEphemeral(t *testing.T) {
	ep, err := Listen("udp4", loopback, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if ep.reserveEphemeral() == 0 {
		t.Fatal("no ephemeral value reserved")
	}
	if err := ep.Close(wire.CloseNormal, ""); err != nil {
		t.Fatal(err)
	}
}

// writeOnly is a Transport that cannot be read either way.
type writeOnly struct{ closed bool }

func (w *writeOnly) WriteBatch(msgs []udp.Message) (int, error) { return len(msgs), nil }
func (w *writeOnly) LocalAddr() netip.AddrPort                  { return loopback }
func (w *writeOnly) Caps() udp.Caps                             { return udp.Caps{} }
func (w *writeOnly) Close() error                               { w.closed = true; return nil }

// TestUnreadableTransport: a transport with neither ReadBatchLent nor
// ReadPackets is refused, as an endpoint's first transport and as a
// further link, and closed, since the endpoint owned it.
func TestUnreadableTransport(t *testing.T) {
	w := &writeOnly{}
	if _, err := NewWithTransport(w, Config{}); !errors.Is(err, errNoReader) || !w.closed {
		t.Fatalf("NewWithTransport: %v (closed %v)", err, w.closed)
	}
	ep, err := Listen("udp4", loopback, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close(wire.CloseNormal, "")
	w = &writeOnly{}
	if _, err := ep.AddTransport(w); !errors.Is(err, errNoReader) || !w.closed {
		t.Fatalf("AddTransport: %v (closed %v)", err, w.closed)
	}
}

// TestServerKeepsTheSessionTheClientUses: the response to the client's
// first initiation is lost, so the server answers a second one too and
// holds two sessions with the client. Once the client speaks on the one it
// completed, that one is the server's session with the client (Live), not
// the first, which the client never completed.
func TestServerKeepsTheSessionTheClientUses(t *testing.T) {
	server, client := newPair(t)
	var proxy atomic.Pointer[udpproxy.Proxy] // set before the first datagram, seen by the proxy's readers
	var dropped atomic.Bool
	cfg := udpproxy.Config{Tap: func(toTarget bool, pkt []byte) {
		if !toTarget && len(pkt) == wire.ResponsePacketLen && dropped.CompareAndSwap(false, true) {
			proxy.Load().Blackout(50 * time.Millisecond) // this response, and nothing after it
		}
	}}
	px, err := udpproxy.New(loopback, server.LocalAddr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Store(px)
	defer px.Close()
	s, err := client.Session(ctx(t), server.PublicKey(), px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if px.Stats().ToClient.BlackedOut == 0 {
		t.Fatal("no response was dropped")
	}
	_, remote := s.IDs()
	waitFor(t, "the server to name the session the client uses", func() bool {
		w := server.Live(client.PublicKey())
		if w == nil {
			return false
		}
		local, _ := w.IDs()
		return local == remote
	})
	server.mu.Lock()
	n := 0
	for _, x := range server.sessions {
		if x != nil && x.peer == client.PublicKey() {
			n++
		}
	}
	server.mu.Unlock()
	if n < 2 {
		t.Fatalf("the server holds %d sessions with the client, want the two it answered", n)
	}
}
