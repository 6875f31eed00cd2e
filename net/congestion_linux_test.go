package net

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// mayUse reports whether this process may give a TCP socket the
// congestion control name (as root, or where the host allows it to all).
func mayUse(t *testing.T, name string) bool {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	return syscall.SetsockoptString(fd, syscall.IPPROTO_TCP, syscall.TCP_CONGESTION, name) == nil
}

// TestCarrierCongestion: a session over the TCP fallback runs, at both
// ends, on the congestion control of Config.Congestion where the kernel
// grants it, and on the host's default where it does not, and says which
// (Session.CarrierCongestion); a session over UDP says "".
func TestCarrierCongestion(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSpace(string(b))
	for _, c := range []struct {
		cc   Congestion
		name string
	}{{CongestionCUBIC, "cubic"}, {CongestionBBR, "bbr"}} {
		want := host
		if mayUse(t, c.name) {
			want = c.name
		}
		cfg := Config{Congestion: c.cc}
		ln, err := (&ListenConfig{Config: cfg}).Listen(t.Context(), "haven4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan net.Conn, 2)
		go func() {
			defer close(accepted)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c
				go func() {
					buf := make([]byte, 64)
					for {
						n, err := c.Read(buf)
						if err != nil {
							return
						}
						c.Write(buf[:n])
					}
				}()
			}
		}()
		for _, network := range []string{"haven4+tcp", "haven4"} {
			d := &Dialer{Config: cfg}
			conn, err := d.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, conn, "hello")
			wantHere := want
			if network == "haven4" {
				wantHere = "" // UDP: no carrier of the kernel's
			}
			if got := conn.(*Conn).Session().CarrierCongestion(); got != wantHere {
				t.Errorf("%v over %s, dialing side: carrier %q, want %q (host default %q)", c.cc, network, got, wantHere, host)
			}
			sc, ok := <-accepted
			if !ok {
				t.Fatal("no accepted conn")
			}
			if got := sc.(*Conn).Session().CarrierCongestion(); got != wantHere {
				t.Errorf("%v over %s, accepting side: carrier %q, want %q (host default %q)", c.cc, network, got, wantHere, host)
			}
			sc.Close()
			conn.Close()
			d.Close()
		}
		ln.Close()
	}
}
