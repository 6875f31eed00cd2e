package net

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/udpproxy"
)

// TestFailoverBetweenLocalAddrs: a Dialer with two local addresses
// (127.0.0.1 and 127.0.0.2) gets a session with a path from each; a 64 MiB
// echo runs while the path in use goes dark (a proxy cuts that client
// address off), then comes back while the other goes dark. The session
// moves each time, is used again on the path that returned, and the echo
// completes byte for byte with no read stalled for long (PROTOCOL.md
// §6.6.7).
func TestFailoverBetweenLocalAddrs(t *testing.T) {
	ln, err := (&ListenConfig{Config: Config{DisableTCP: true}}).Listen(t.Context(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serveEcho(ln)
	srv := ln.Addr().(*Addr)
	px, err := udpproxy.New(netip.MustParseAddrPort("127.0.0.1:0"), srv.Addr, udpproxy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()

	one, two := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	d := &Dialer{Config: Config{DisableTCP: true},
		LocalAddrs: []netip.AddrPort{netip.AddrPortFrom(one, 0), netip.AddrPortFrom(two, 0)}}
	defer d.Close()
	c, err := d.Dial("haven4", (&Addr{Key: srv.Key, Addr: px.Addr()}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := c.(*Conn).Session()
	active := func() netip.Addr { return s.Paths()[0].Local.Addr() }
	if ps := s.Paths(); len(ps) != 2 || !ps[0].Active || ps[0].Local.Addr() != one || ps[1].Local.Addr() != two {
		t.Fatalf("paths %+v, want one in use from %v and a backup from %v", ps, one, two)
	}

	run := startEcho(c, patterned(64<<20, 11))
	run.resume()
	moveOff := func(dark netip.Addr) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); active() == dark; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the session stayed on the dark path from %v: %+v", dark, s.Paths())
			}
		}
	}

	run.waitEchoed(t, 16<<20)
	px.BlockClient(one, true) // the path in use goes dark
	moveOff(one)
	run.waitEchoed(t, 32<<20)
	px.BlockClient(one, false) // it comes back, and the other goes dark
	px.BlockClient(two, true)
	moveOff(two)
	if a := active(); a != one {
		t.Fatalf("the session moved to %v, want back to %v", a, one)
	}
	run.finish(t, "echo across two failovers")
	if n := s.PathChanges(); n < 2 {
		t.Errorf("PathChanges %d after two failovers", n)
	}
	if run.stall > 2*time.Second {
		t.Errorf("a read stalled %v (from %v) across a failover, want well under 2 s",
			run.stall, run.stallAt.Format("15:04:05.000"))
	}
}

// TestFailoverToAdvertisedAddress: a server reachable at two addresses
// (two proxies in front of its one socket) advertises the second
// (Config.Advertise); the client keeps a path to it as a backup and moves
// there when the first goes dark, in the middle of a 32 MiB echo, which
// completes byte for byte (PROTOCOL.md §6.6.2, §6.6.7).
func TestFailoverToAdvertisedAddress(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	var px [2]*udpproxy.Proxy
	for i := range px {
		if px[i], err = udpproxy.New(netip.MustParseAddrPort("127.0.0.1:0"), target, udpproxy.Config{}); err != nil {
			t.Fatal(err)
		}
		defer px[i].Close()
	}
	h, err := NewHost(pc, Config{Advertise: []netip.AddrPort{px[1].Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ln, err := h.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(ln)

	d := &Dialer{Config: Config{DisableTCP: true}}
	defer d.Close()
	c, err := d.Dial("haven4", (&Addr{Key: h.Addr().(*Addr).Key, Addr: px[0].Addr()}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := c.(*Conn).Session()
	for deadline := time.Now().Add(10 * time.Second); len(s.Paths()) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("paths %+v: the advertised address never became a backup", s.Paths())
		}
	}
	if ps := s.Paths(); ps[0].Remote != px[0].Addr() || ps[1].Remote != px[1].Addr() || ps[1].Active {
		t.Fatalf("paths %+v, want %v in use and %v as a backup", ps, px[0].Addr(), px[1].Addr())
	}

	run := startEcho(c, patterned(32<<20, 13))
	run.resume()
	run.waitEchoed(t, 8<<20)
	px[0].Blackout(time.Hour) // the first address goes dark
	run.finish(t, "echo across the failover")
	if ps := s.Paths(); ps[0].Remote != px[1].Addr() {
		t.Fatalf("paths %+v after the first address went dark, want %v in use", ps, px[1].Addr())
	}
}
