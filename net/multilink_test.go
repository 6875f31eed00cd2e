package net

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/udpproxy"
)

// pathsInUse waits (at most 10 s) until the session holds n paths in the
// state want, and returns the paths.
func pathsInUse(t *testing.T, s *Session, n int, want string) []PathInfo {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		ps := s.Paths()
		k := 0
		for _, p := range ps {
			if p.State == want {
				k++
			}
		}
		if k >= n {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("paths %+v: want %d %s", ps, n, want)
		}
	}
}

// sentOn returns the bytes this side sent on the path from local to
// remote (either may be left zero: any).
func sentOn(s *Session, local netip.Addr, remote netip.AddrPort) uint64 {
	for _, p := range s.Paths() {
		if (!local.IsValid() || p.Local.Addr() == local) && (!remote.IsValid() || p.Remote == remote) {
			return p.BytesSent
		}
	}
	return 0
}

// The client addresses of the tests with two local sockets.
var one, two = netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")

// echoFromTwoAddresses starts an echo listener behind a proxy and returns
// the proxy and a connection to it from a Dialer with local addresses one
// and two (their paths backups with backup set); everything is closed at
// cleanup.
func echoFromTwoAddresses(t *testing.T, backup bool) (*udpproxy.Proxy, net.Conn) {
	t.Helper()
	srv := echoListener(t, ListenConfig{Config: Config{DisableTCP: true}}).Addr().(*Addr)
	px, err := udpproxy.New(netip.MustParseAddrPort("127.0.0.1:0"), srv.Addr, udpproxy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	d := &Dialer{Config: Config{DisableTCP: true}, BackupPaths: backup,
		LocalAddrs: []netip.AddrPort{netip.AddrPortFrom(one, 0), netip.AddrPortFrom(two, 0)}}
	t.Cleanup(func() { d.Close() })
	c, err := d.Dial("haven4", (&Addr{Key: srv.Key, Addr: px.Addr()}).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return px, c
}

// TestMultipathBetweenLocalAddrs: a Dialer with two local addresses
// (127.0.0.1 and 127.0.0.2) gets a session that opens a path from each
// and uses both during a 64 MiB echo. The first goes dark in the middle
// (a proxy cuts that client address off): the echo goes on over the
// other with no read stalled for a second, completes byte for byte, and
// the path that comes back carries data again (PROTOCOL.md §6.6).
func TestMultipathBetweenLocalAddrs(t *testing.T) {
	px, c := echoFromTwoAddresses(t, false)
	s := c.(*Conn).Session()
	ps := pathsInUse(t, s, 2, "active")
	if ps[0].Local.Addr() != one || ps[1].Local.Addr() != two {
		t.Fatalf("paths %+v, want one from %v and one from %v", ps, one, two)
	}

	run := startEcho(c, patterned(64<<20, 11))
	run.resume()
	run.waitEchoed(t, 16<<20)
	onOne, onTwo := sentOn(s, one, netip.AddrPort{}), sentOn(s, two, netip.AddrPort{})
	if onOne < 1<<20 || onTwo < 1<<20 {
		t.Fatalf("after 16 MiB echoed, %d bytes went from %v and %d from %v: both paths should carry data", onOne, one, onTwo, two)
	}
	px.BlockClient(one, true) // the first path goes dark
	run.waitEchoed(t, 32<<20)
	pathsInUse(t, s, 1, "suspect")
	px.BlockClient(one, false) // it comes back
	back := sentOn(s, one, netip.AddrPort{})
	run.finish(t, "echo across a path going dark and coming back")
	t.Logf("paths at the end: %+v; longest read stall %v", s.Paths(), run.stall)
	if got := sentOn(s, one, netip.AddrPort{}) - back; got < 1<<20 {
		t.Errorf("the path from %v carried %d bytes after it came back, want it used again", one, got)
	}
	if run.stall > time.Second {
		t.Errorf("a read stalled %v (from %v) while a path went dark, want under 1 s",
			run.stall, run.stallAt.Format("15:04:05.000"))
	}
}

// TestMultipathBackup: with Dialer.BackupPaths, the second path carries
// none of this side's data while the first works, and the echo moves to
// it when the first goes dark.
func TestMultipathBackup(t *testing.T) {
	px, c := echoFromTwoAddresses(t, true)
	s := c.(*Conn).Session()
	pathsInUse(t, s, 1, "backup")
	run := startEcho(c, patterned(32<<20, 12))
	run.resume()
	run.waitEchoed(t, 8<<20)
	if got := sentOn(s, two, netip.AddrPort{}); got > 64<<10 {
		t.Fatalf("the backup path carried %d bytes while the first worked", got)
	}
	px.BlockClient(one, true)
	run.finish(t, "echo moved to the backup")
	if got := sentOn(s, two, netip.AddrPort{}); got < 8<<20 {
		t.Errorf("the backup carried %d bytes after the first path went dark", got)
	}
}

// echoAtTwoAddresses starts an echo server behind two proxies (configured
// by first and second) in front of its one socket, advertising the second
// (Config.Advertise), and returns the proxies and a connection dialed to
// the first; everything is closed at cleanup.
func echoAtTwoAddresses(t *testing.T, first, second udpproxy.Config) ([2]*udpproxy.Proxy, net.Conn) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	var px [2]*udpproxy.Proxy
	for i, cfg := range []udpproxy.Config{first, second} {
		if px[i], err = udpproxy.New(netip.MustParseAddrPort("127.0.0.1:0"), target, cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { px[i].Close() })
	}
	ln := hostListener(t)(NewHost(pc, Config{Advertise: []netip.AddrPort{px[1].Addr()}}))
	serveEcho(ln)
	d := &Dialer{Config: Config{DisableTCP: true}}
	t.Cleanup(func() { d.Close() })
	c, err := d.Dial("haven4", (&Addr{Key: ln.Addr().(*Addr).Key, Addr: px[0].Addr()}).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return px, c
}

// TestMultipathToAdvertisedAddress: a server reachable at two addresses
// (two proxies in front of its one socket) advertises the second
// (Config.Advertise); the client opens a path to it beside the first, uses
// both, and when the first goes dark in the middle of a 32 MiB echo the
// echo completes over the second (PROTOCOL.md §6.6.2).
func TestMultipathToAdvertisedAddress(t *testing.T) {
	px, c := echoAtTwoAddresses(t, udpproxy.Config{}, udpproxy.Config{})
	s := c.(*Conn).Session()
	if ps := pathsInUse(t, s, 2, "active"); ps[0].Remote != px[0].Addr() || ps[1].Remote != px[1].Addr() {
		t.Fatalf("paths %+v, want to %v and to %v", ps, px[0].Addr(), px[1].Addr())
	}

	run := startEcho(c, patterned(32<<20, 13))
	run.resume()
	run.waitEchoed(t, 8<<20)
	if a, b := sentOn(s, netip.Addr{}, px[0].Addr()), sentOn(s, netip.Addr{}, px[1].Addr()); a < 1<<20 || b < 1<<20 {
		t.Fatalf("%d and %d bytes went to the two addresses: both should carry data", a, b)
	}
	px[0].Blackout(time.Hour) // the first address goes dark
	run.finish(t, "echo across the first address going dark")
	if st := px[1].Stats(); st.ToTarget.Forwarded == 0 || st.ToClient.Forwarded == 0 {
		t.Fatalf("nothing crossed the second address: %+v", st)
	}
}

// TestMultipathRebinding: the second of two paths (each capped at 16 MB/s,
// so that the echo lasts a few seconds) goes through a NAT that rebinds
// its port every 300 ms. The server, which holds both paths,
// cannot tell which one moved, so it adds each new address as a path
// (retiring the silent ones); the 32 MiB echo completes byte for byte and
// both addresses carry data throughout.
func TestMultipathRebinding(t *testing.T) {
	px, c := echoAtTwoAddresses(t, udpproxy.Config{Rate: 16e6},
		udpproxy.Config{Rate: 16e6, RotatePort: 300 * time.Millisecond, Seed: 3})
	s := c.(*Conn).Session()
	pathsInUse(t, s, 2, "active")
	before := px[1].Stats()
	run := startEcho(c, patterned(32<<20, 14))
	run.resume()
	run.finish(t, "echo over a path whose NAT rebinds")
	st := px[1].Stats()
	if st.Rotations == before.Rotations {
		t.Fatal("the proxy never rebound during the echo: the test proves nothing")
	}
	if st.ToClient.Forwarded-before.ToClient.Forwarded < 100 || st.ToTarget.Forwarded-before.ToTarget.Forwarded < 100 {
		t.Fatalf("the rebinding path carried little each way: %+v", st)
	}
	if run.stall > time.Second {
		t.Errorf("a read stalled %v while the NAT rebound", run.stall)
	}
}
