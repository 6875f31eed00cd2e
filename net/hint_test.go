package net

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/havenproto/haven/mux"
)

// A fresh session's first Dial to a service the peer serves returns on
// the handshake's answer (PROTOCOL.md §7.2), without waiting a round
// trip for the stream's ACCEPT. Shown without timing: the server's
// accept backlog (1) is full, so the stream is refused; a Dial that
// waited for the ACCEPT would fail with the refusal, while this one
// returns and the refusal reaches the first Read, naming the cause.
func TestDialServedServiceNoAcceptWait(t *testing.T) {
	for _, network := range []string{"haven4", "haven4+tcp"} {
		t.Run(network, func(t *testing.T) { testDialServedService(t, network) })
	}
}

func testDialServedService(t *testing.T, network string) {
	lc := ListenConfig{Service: "echo", Config: Config{Backlog: 1}}
	ln, err := lc.Listen(context.Background(), "haven", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // nobody calls Accept: the first stream fills the backlog
	// The first stream: dialed on a session whose handshake asked about
	// another service, so this Dial waits for the ACCEPT, which the
	// server sends once the stream is in the backlog.
	first := &Dialer{Service: "other", Timeout: 10 * time.Second}
	defer first.Close()
	if _, err := first.Dial(network, ln.Addr().String()); err == nil {
		t.Fatal("dial to an unserved service succeeded")
	}
	first.Service = "echo"
	c1, err := first.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()

	d := &Dialer{Service: "echo", Timeout: 10 * time.Second}
	defer d.Close()
	c, err := d.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatalf("Dial waited for the stream's answer: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ce *mux.ChannelError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "backlog full") {
		t.Fatalf("Read on a refused stream: %v, want the refusal", err)
	}
}

// A first Dial to a service the peer does not serve still fails in Dial,
// naming it: the handshake's answer was "not served", so the Dial waited
// for the stream's ACCEPT or REFUSE as before.
func TestDialUnservedServiceAnswered(t *testing.T) {
	ln, err := (&ListenConfig{Service: "echo"}).Listen(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echoServer(ln)
	d := &Dialer{Service: "other", Timeout: 10 * time.Second}
	defer d.Close()
	if c, err := d.Dial("haven4", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("dial to an unserved service succeeded")
	} else if !strings.Contains(err.Error(), `no service "other"`) {
		t.Fatalf("dial to an unserved service: %v", err)
	}
	// The session is up; a Dial to the served service on it waits for
	// its first ACCEPT (no handshake asked about it) and works.
	d.Service = "echo"
	c, err := d.Dial("haven4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "later")
}
