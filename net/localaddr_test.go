package net

import (
	"net/netip"
	"testing"
)

// TestDialedLocalAddr: a Conn from a zero Dialer (its socket bound to the
// unspecified address) shows the real source address, the one the server
// sees as its RemoteAddr, and an accepted Conn on a listener bound to the
// unspecified address shows the address the client reached (issue #11).
func TestDialedLocalAddr(t *testing.T) {
	for _, tc := range []struct{ network, listen, loop string }{
		{"haven4", "127.0.0.1:0", "127.0.0.1"},
		{"haven4", ":0", "127.0.0.1"},
		{"haven6", "[::1]:0", "::1"},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			ln, err := Listen(tc.network, tc.listen)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			la := ln.Addr().(*Addr)
			target := &Addr{Key: la.Key, Addr: netip.AddrPortFrom(netip.MustParseAddr(tc.loop), la.Addr.Port())}
			var d Dialer
			defer d.Close()
			c, err := d.Dial(tc.network, target.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			local := c.LocalAddr().(*Addr)
			if local.Addr.Addr().IsUnspecified() || local.Addr.Addr().String() != tc.loop {
				t.Fatalf("dialed LocalAddr %v, want the source address %s", local, tc.loop)
			}
			if got, want := sc.RemoteAddr().String(), c.LocalAddr().String(); got != want {
				t.Fatalf("server sees the client at %s, the client's LocalAddr says %s", got, want)
			}
			if got, want := sc.LocalAddr().String(), target.String(); got != want {
				t.Fatalf("accepted LocalAddr %s, want the address dialed, %s", got, want)
			}
			if c.LocalAddr() != c.LocalAddr() {
				t.Fatal("LocalAddr is looked up again on each call")
			}
		})
	}
}
