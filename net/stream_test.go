package net

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestStreamConnConformance runs nettest's net.Conn suite on channels of
// sessions over the stream transport ("haven+tcp", docs/PROTOCOL.md §8):
// the same channels as over UDP, carried by TCP.
func TestStreamConnConformance(t *testing.T) {
	nettest.TestConn(t, pipeFactoryOn(t, "haven4+tcp", Config{}))
}

// echoVia dials addr on network with a Dialer of its own, checks that a
// message comes back from the echo server there and that the session is
// carried by transport ("udp" or "tcp").
func echoVia(t *testing.T, network string, addr net.Addr, transport string) {
	t.Helper()
	d := &Dialer{Timeout: 10 * time.Second}
	defer d.Close()
	c, err := d.Dial(network, addr.String())
	if err != nil {
		t.Fatalf("%s: %v", network, err)
	}
	defer c.Close()
	msg := []byte("over " + network)
	c.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("%s: echo %q, %v", network, got, err)
	}
	if tr := c.(*Conn).Session().Transport(); tr != transport {
		t.Fatalf("%s: session transport %q, want %q", network, tr, transport)
	}
}

// serveEcho accepts every conn of ln and echoes it until EOF, in the
// background, until ln closes.
func serveEcho(ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
}

// TestStreamBulk: 16 MiB through "haven+tcp" arrive byte-exact, and a
// UDP-only dial to the TCP-only listener finds nobody.
func TestStreamBulk(t *testing.T) {
	ln, err := Listen("haven+tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	d := &Dialer{}
	defer d.Close()
	c, err := d.Dial("haven+tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	startEcho(c, patterned(16<<20, 9)).finish(t, "echo over haven+tcp")
	ud := &Dialer{Timeout: 1500 * time.Millisecond, Config: Config{DisableTCP: true}}
	defer ud.Close()
	if _, err := ud.Dial("haven", ln.Addr().String()); err == nil {
		t.Fatal("a UDP-only dial reached a TCP-only listener")
	}
}

// TestListenServesTCPFallback: a listener on "haven" answers the same
// address over TCP too, one identity and one Accept for both; with
// Config.DisableTCP it does not.
func TestListenServesTCPFallback(t *testing.T) {
	ln, err := Listen("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serveEcho(ln)
	echoVia(t, "haven4", ln.Addr(), "udp")
	echoVia(t, "haven4+tcp", ln.Addr(), "tcp")

	lc := ListenConfig{Config: Config{DisableTCP: true}}
	off, err := lc.Listen(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	d := &Dialer{Timeout: 2 * time.Second}
	defer d.Close()
	if _, err := d.Dial("haven4+tcp", off.Addr().String()); err == nil {
		t.Fatal("DisableTCP: a TCP dial connected")
	}
}

// TestDialFallsBackToTCP: the UDP port is a black hole (a socket that
// swallows every datagram) and the server listens on TCP at the same
// number: Dial("haven4") connects over TCP within 2 s, the session says
// so, and 16 MiB cross byte-exact. With Config.DisableTCP the same dial
// does not connect.
func TestDialFallsBackToTCP(t *testing.T) {
	var hole net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		if hole, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		port := hole.LocalAddr().(*net.UDPAddr).Port
		if ln, err = Listen("haven4+tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			break
		}
		hole.Close()
		if try == 10 {
			t.Fatalf("no port free on both UDP and TCP: %v", err)
		}
	}
	defer hole.Close()
	defer ln.Close()
	swallowed := make(chan int, 1)
	go func() {
		n, buf := 0, make([]byte, 2048)
		for {
			if _, _, err := hole.ReadFrom(buf); err != nil {
				swallowed <- n
				return
			}
			n++
		}
	}()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()

	d := &Dialer{}
	defer d.Close()
	start := time.Now()
	c, err := d.Dial("haven4", ln.Addr().String())
	took := time.Since(start)
	if err != nil {
		t.Fatalf("dial with UDP black-holed: %v", err)
	}
	defer c.Close()
	if took > 2*time.Second {
		t.Errorf("the fallback took %v, want under 2 s", took)
	}
	if tr := c.(*Conn).Session().Transport(); tr != "tcp" {
		t.Fatalf("session transport %q, want tcp", tr)
	}
	startEcho(c, patterned(16<<20, 5)).finish(t, "echo after the fallback")

	udpOnly := &Dialer{Timeout: 1500 * time.Millisecond, Config: Config{DisableTCP: true}}
	defer udpOnly.Close()
	if _, err := udpOnly.Dial("haven4", ln.Addr().String()); err == nil {
		t.Fatal("DisableTCP: the dial connected through the black hole")
	}
	hole.Close()
	if n := <-swallowed; n == 0 {
		t.Fatal("no UDP initiation reached the black hole: the dial did not try UDP first")
	}
}

// TestHostTCP: a Host from ListenHost serves its services over the TCP
// fallback too, and a Host on a passed socket (NewHost) does once given a
// TCP listener (ServeTCP, as haven serve does with systemd's
// ListenStream=).
func TestHostTCP(t *testing.T) {
	echoHost := func(h *Host) {
		ln, err := h.Listen("")
		if err != nil {
			t.Fatal(err)
		}
		serveEcho(ln)
	}
	check := func(h *Host) { echoVia(t, "haven4+tcp", h.Addr(), "tcp") }
	var lc ListenConfig
	h, err := lc.ListenHost(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	echoHost(h)
	check(h)

	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := NewHost(pc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	tl, err := net.Listen("tcp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err) // the same number is taken on TCP: rare on loopback
	}
	if err := h2.ServeTCP(tl); err != nil {
		t.Fatal(err)
	}
	echoHost(h2)
	check(h2)

	// A Host from ListenHost without a key, its fallback off, then given
	// a TCP listener: ServeTCP answers with the Host's own key.
	off := ListenConfig{Config: Config{DisableTCP: true}}
	h3, err := off.ListenHost(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer h3.Close()
	tl3, err := net.Listen("tcp4", h3.Addr().(*Addr).Addr.String())
	if err != nil {
		t.Fatal(err) // the same number is taken on TCP: rare on loopback
	}
	if err := h3.ServeTCP(tl3); err != nil {
		t.Fatal(err)
	}
	echoHost(h3)
	check(h3)
}

// TestHTTPOverTCPFallback: net/http serves and fetches over "haven+tcp"
// exactly as over UDP: 20 requests with bodies up to 1 MiB, each echoed
// byte-exact.
func TestHTTPOverTCPFallback(t *testing.T) {
	ln, err := Listen("haven4+tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read all, then answer: HTTP/1.1 handlers are not full-duplex.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(body)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	d := &Dialer{Timeout: 10 * time.Second}
	defer d.Close()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "haven4+tcp", ln.Addr().String())
		}}}
	defer client.CloseIdleConnections()
	for i := range 20 {
		body := prngBytes(uint64(i), i*(1<<20)/19)
		resp, err := client.Post("http://haven/echo", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("request %d: %d of %d bytes back, %v", i, len(got), len(body), err)
		}
	}
}

// TestDatagramsOverTCPFallback: a datagram channel of a session over the
// TCP fallback ("haven4+tcp") carries datagrams of every size class up to
// the largest, each whole and byte-exact, one per Read (message-bounded),
// and, the carrier being reliable, none is lost when each waits for its
// echo (issue #13).
func TestDatagramsOverTCPFallback(t *testing.T) {
	h, _, telemetry := hostWithServices(t, "web")
	go func() { // echo every datagram back as it came
		buf := make([]byte, 70000)
		for {
			n, from, err := telemetry.ReadFrom(buf)
			if err != nil {
				return
			}
			telemetry.WriteTo(buf[:n], from)
		}
	}()
	d := &Dialer{Service: "web"}
	defer d.Close()
	c, err := d.Dial("haven4+tcp", h.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess := c.(*Conn).Session()
	if tr := sess.Transport(); tr != "tcp" {
		t.Fatalf("session transport %q, want tcp", tr)
	}
	dg, err := sess.OpenDatagram("telemetry", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer dg.Close()
	sizes := []int{1, 4, 100, 1200, 1472, 9000, 30000, 65488, 65506, 65507}
	for i := 0; i < 60; i++ {
		sizes = append(sizes, 4+(i*7919)%65500)
	}
	buf := make([]byte, 70000)
	for i, n := range sizes {
		p := payload(n, i)
		if _, err := dg.Write(p); err != nil {
			t.Fatalf("Write %d bytes: %v", n, err)
		}
		dg.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := dg.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d (%d bytes): no echo over the reliable carrier: %v", i, n, err)
		}
		if !bytes.Equal(buf[:got], p) {
			t.Fatalf("datagram %d: %d bytes back, want %d byte-exact", i, got, n)
		}
	}
	if st := sess.Stats(); st.DatagramsSent < uint64(len(sizes)) {
		t.Fatalf("the session sent %d datagrams, want %d", st.DatagramsSent, len(sizes))
	}
}
