package net

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/havenproto/haven/mux"
)

// hostWithServices opens a Host on loopback with an echo server on stream
// service web (returned) and a datagram service "telemetry", closed at the test's end.
func hostWithServices(t *testing.T, web string) (*Host, net.Listener, net.PacketConn) {
	t.Helper()
	h, err := (&ListenConfig{}).ListenHost(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ln, err := h.Listen(web)
	if err != nil {
		t.Fatal(err)
	}
	go echoServer(ln)
	telemetry, err := h.ListenPacket("telemetry")
	if err != nil {
		t.Fatal(err)
	}
	return h, ln, telemetry
}

// TestHostServices: one port serves a stream service and a datagram
// service; a channel to an unknown service is refused with its name.
func TestHostServices(t *testing.T) {
	h, web, telemetry := hostWithServices(t, "web")
	if _, err := h.Listen("web"); err == nil {
		t.Fatal("a second listener for one service")
	}

	d := &Dialer{Service: "web", Timeout: 10 * time.Second}
	defer d.Close()
	c, err := d.Dial("haven4", h.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "web request")
	c.Close()

	// Datagrams to the telemetry service on the same port.
	cfg := ListenConfig{Service: "telemetry"}
	probe, err := cfg.ListenPacket(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	buf := make([]byte, 64)
	for attempt := 0; ; attempt++ {
		probe.WriteTo([]byte("cpu=3%"), h.Addr())
		telemetry.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := telemetry.ReadFrom(buf)
		if err == nil {
			if string(buf[:n]) != "cpu=3%" || from.(*Addr).Key != probe.LocalAddr().(*Addr).Key {
				t.Fatalf("telemetry got %q from %v", buf[:n], from)
			}
			break
		}
		if attempt == 4 {
			t.Fatalf("no telemetry datagram: %v", err)
		}
	}

	// An unknown service is refused, and the error names it.
	bad := &Dialer{Service: "ssh", Timeout: 10 * time.Second}
	defer bad.Close()
	_, err = bad.Dial("haven4", h.Addr().String())
	var ce *mux.ChannelError
	if !errors.As(err, &ce) || !ce.Refused || !strings.Contains(err.Error(), `no service "ssh"`) {
		t.Fatalf("unknown service: %v", err)
	}
	// A closed service is refused too. The session saw "web" accept a
	// channel before, so this Dial need not wait for the ACCEPT: the
	// refusal, naming the service, shows on the first Read instead; and
	// the next Dial, which knows of the refusal, fails at once.
	web.Close()
	c, err = d.Dial("haven4", h.Addr().String())
	if err == nil {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if !errors.As(err, &ce) || !ce.Refused || !strings.Contains(err.Error(), `"web"`) {
		t.Fatalf("closed service: %v, want its refusal, naming it", err)
	}
	if _, err := d.Dial("haven4", h.Addr().String()); !errors.As(err, &ce) || !ce.Refused || !strings.Contains(err.Error(), `"web"`) {
		t.Fatalf("dial after the refusal: %v, want the refusal at Dial", err)
	}
}

// TestHostRestart: the server closes its sessions with CloseRestarting and
// comes back on the same port with the same key; the client's next Dial
// makes a new session transparently.
func TestHostRestart(t *testing.T) {
	key, _ := GeneratePrivateKey()
	lc := &ListenConfig{Config: Config{PrivateKey: key}}
	h, err := lc.ListenHost(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := h.Listen("")
	go echoServer(ln)
	addr := h.Addr().String()
	d := &Dialer{Timeout: 10 * time.Second}
	defer d.Close()
	c, err := d.Dial("haven4", addr)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "before restart")

	h.Shutdown(CloseRestarting, "restarting")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var cl *mux.CloseError
	if !errors.As(err, &cl) || cl.Code != CloseRestarting || !cl.Remote {
		t.Fatalf("client saw %v, want the restart code", err)
	}

	// The same socket address again (as systemd would hand it back).
	port := h.Addr().(*Addr).Addr.Port()
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)))
	if err != nil {
		t.Fatal(err)
	}
	h2, err := NewHost(pc, Config{PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	ln2, _ := h2.Listen("")
	go echoServer(ln2)
	if h2.Addr().String() != addr {
		t.Fatalf("restarted at %v, want %v", h2.Addr(), addr)
	}
	c2, err := d.Dial("haven4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	roundTrip(t, c2, "after restart")
}
