package compat

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// hostCongestion returns the host's default TCP congestion control and
// those an unprivileged process may ask for.
func hostCongestion(t *testing.T) (def string, allowed []string) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b)), strings.Fields(string(a))
}

// connCongestion returns the congestion control of c's socket.
func connCongestion(t *testing.T, c net.Conn) string {
	t.Helper()
	rc := rawConn(c)
	if rc == nil {
		t.Fatal("the connection has no socket")
	}
	name, err := congestionOf(rc)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// streamPair listens and dials a stream transport pair with cfg on both
// ends, and returns the dialed and the accepted connection.
func streamPair(t *testing.T, cfg StreamConfig) (dialed, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lt, err := ListenStream(ln, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lt.Close() })
	ct, err := DialStream(testCtx(t), netip.AddrPort{}, lt.LocalAddr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		lt.mu.Lock()
		for _, sc := range lt.conns {
			accepted = sc.c
		}
		lt.mu.Unlock()
		if accepted != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if accepted == nil {
		t.Fatal("the listener accepted no connection")
	}
	ct.mu.Lock()
	dialed = ct.dialed.c
	ct.mu.Unlock()
	return dialed, accepted
}

// TestStreamCongestion: both ends' TCP connections use the congestion
// control StreamConfig names, not the host's default (docs/PROTOCOL.md
// §8.1). Reno is always available and allowed to every process, so the
// test asks for it, or, on a host whose default is Reno, for another
// algorithm this process may use.
func TestStreamCongestion(t *testing.T) {
	def, allowed := hostCongestion(t)
	want := "reno"
	if def == "reno" {
		want = ""
		for _, a := range allowed {
			if a != def {
				want = a
				break
			}
		}
		if want == "" {
			// Nothing but Reno may be asked for here: no name tells the
			// request from the default, but asking must still give Reno.
			want = "reno"
		}
	}
	dialed, accepted := streamPair(t, StreamConfig{Congestion: want})
	if got := connCongestion(t, dialed); got != want {
		t.Errorf("dialed connection: %q, want %q (host default %q)", got, want, def)
	}
	if got := connCongestion(t, accepted); got != want {
		t.Errorf("accepted connection: %q, want %q (host default %q)", got, want, def)
	}
}

// TestStreamCongestionRefused: a name the kernel refuses leaves the
// host's choice, and the connection works.
func TestStreamCongestionRefused(t *testing.T) {
	def, _ := hostCongestion(t)
	dialed, accepted := streamPair(t, StreamConfig{Congestion: "no-such-algorithm"})
	for _, c := range []net.Conn{dialed, accepted} {
		if got := connCongestion(t, c); got != def {
			t.Errorf("%q, want the host's %q", got, def)
		}
	}
}
