package endpoint

import (
	"net/netip"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// TestLinkCloseRetiresPaths: a session that opened a further path over a
// second socket of its endpoint loses that path from the engine when the
// socket's link is closed, and keeps working over the first.
func TestLinkCloseRetiresPaths(t *testing.T) {
	server, err := Listen("udp4", loopback, Config{Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close(wire.CloseNormal, "")
	svc, _ := server.Listen("")
	go echo(svc)
	client := newClient(t, Config{})
	second, err := client.AddSocket("udp4", netip.MustParseAddrPort("127.0.0.2:0"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	active := func() int {
		n := 0
		for _, p := range s.Paths() {
			if p.State == "active" {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); active() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("paths %+v: the second socket's path was never opened", s.Paths())
		}
	}
	second.Close()
	if n := active(); n != 1 {
		t.Fatalf("%d paths in use after the second socket's link closed: %+v", n, s.Paths())
	}
	echoMsg(t, s, "over the first path")
}
