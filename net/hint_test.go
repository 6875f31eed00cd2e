package net

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/udpproxy"
	"github.com/havenproto/haven/wire"
)

// A fresh session's first Dial to a service the peer serves returns on
// the handshake response alone: the handshake asked about the service
// (PROTOCOL.md §7.2), so the Dial does not wait a round trip for the
// stream's ACCEPT. A proxy counts what the server sends: when Dial
// returns, the client can have received nothing but the response.
func TestDialServedServiceNoAcceptWait(t *testing.T) {
	ln, err := (&ListenConfig{Service: "echo"}).Listen(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echoServer(ln)
	var toClient, responses atomic.Int32
	addr, _ := proxyTo(t, ln, udpproxy.Config{Tap: func(toTarget bool, pkt []byte) {
		if toTarget {
			return
		}
		toClient.Add(1)
		if len(pkt) > wire.HeaderLen && pkt[wire.HeaderLen] == byte(wire.MsgHandshakeResponse) {
			responses.Add(1)
		}
	}})
	d := &Dialer{Service: "echo", Timeout: 10 * time.Second}
	defer d.Close()
	c, err := d.Dial("haven4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The proxy taps a datagram before forwarding it: what the client
	// read before Dial returned was tapped before that.
	if n, r := toClient.Load(), responses.Load(); r != 1 || n != 1 {
		t.Fatalf("Dial returned after %d datagrams from the server (%d handshake responses), want the response alone", n, r)
	}
	roundTrip(t, c, "served")
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
