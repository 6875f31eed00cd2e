package udp

import (
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDontFragment: sockets send whole datagrams with the don't-fragment
// bit and no use of the kernel's (ICMP-learned) path MTU cache, as path MTU
// discovery needs (PROTOCOL.md §6.5).
func TestDontFragment(t *testing.T) {
	for _, tc := range []struct {
		network string
		addr    string
		level   int
		opt     int
		want    int
	}{
		{"udp4", "127.0.0.1:0", unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE},
		{"udp6", "[::1]:0", unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE},
	} {
		t.Run(tc.network, func(t *testing.T) {
			c, err := Listen(tc.network, netip.MustParseAddrPort(tc.addr), Options{})
			if err != nil {
				if tc.network == "udp6" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer c.Close()
			if !c.Caps().DontFragment {
				t.Fatal("Caps().DontFragment is false")
			}
			rc, err := c.pc.(syscall.Conn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got int
			var gerr error
			rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), tc.level, tc.opt) })
			if gerr != nil || got != tc.want {
				t.Fatalf("MTU discovery mode %d (%v), want %d", got, gerr, tc.want)
			}
		})
	}
}
