package endpoint

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/secure"
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
		_, err := client.SessionAhead(ownerCtx, time.Now().Add(time.Minute), peer, px.Addr(), secure.EphemeralAhead{})
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
