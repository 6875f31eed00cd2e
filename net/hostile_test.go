package net

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/wire"
)

// echoListener listens on 127.0.0.1 with lc and echoes every channel
// (echoServer). The test's cleanup closes the whole host, sessions
// included: a listener's Close alone leaves accepted sessions running
// until their peers close them, and a test whose proxy goes first may
// lose that close and leave the session to its idle timeout, which a
// later test would count as a leak.
func echoListener(t *testing.T, lc ListenConfig) net.Listener {
	t.Helper()
	ln := hostListener(t)(lc.ListenHost(context.Background(), "haven4", "127.0.0.1:0"))
	go echoServer(ln)
	return ln
}

// hostListener returns a function that takes a new host (and its error),
// closes the host at the test's cleanup, and returns a listener for its
// default service: hostListener(t)(NewHost(...)).
func hostListener(t *testing.T) func(*Host, error) net.Listener {
	return func(h *Host, err error) net.Listener {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		ln, err := h.Listen("")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
}

// echoServer accepts channels on ln and echoes each until EOF.
func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			io.Copy(c, c)
			c.(*Conn).CloseWrite()
			c.Close()
		}()
	}
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo %q: %q %v", msg, buf, err)
	}
}

// TestHostilePackets: garbage, truncated initiations, initiations for
// another key and forged transport packets for a live session get no
// reply, and the live session keeps working.
func TestHostilePackets(t *testing.T) {
	ln, err := Listen("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echoServer(ln)
	d := &Dialer{Timeout: 10 * time.Second}
	defer d.Close()
	c, err := d.Dial("haven4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "before")

	server := ln.Addr().(*Addr)
	raw, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	send := func(p []byte) { raw.WriteToUDPAddrPort(p, server.Addr) }

	// Garbage of many sizes, some starting with the protocol id.
	for n := 0; n < 300; n += 7 {
		p := make([]byte, n)
		rand.Read(p)
		if n >= 8 && n%2 == 0 {
			copy(p, wire.ProtocolID[:])
		}
		send(p)
	}
	// Truncated initiations addressed to the server, and a whole one
	// addressed to another key.
	priv, _ := wire.GeneratePrivateKey()
	id, _ := secure.NewIdentity(priv)
	other, _ := wire.GeneratePrivateKey()
	for _, peer := range []wire.PublicKey{server.Key, other.PublicKey()} {
		ini, err := secure.NewInitiator(id, peer, 7, 0, (&Config{}).endpoint(false).Session.Params(), secure.HandshakeConfig{}, time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		pkt, _, _ := ini.Poll(time.Now())
		if peer == server.Key {
			for _, n := range []int{1, 8, 39, 40, 47, 48, 100, 183, 199, 215} {
				send(pkt[:n])
			}
			bad := append([]byte(nil), pkt...)
			bad[len(bad)-40] ^= 1 // payload bit: mac1 fails
			send(bad)
		} else {
			send(pkt)
		}
	}
	// Forged transport packets for the live session: right ids, bad tags,
	// and the same with a huge packet number.
	local, remote := c.(*Conn).st.Session().IDs()
	for i := 0; i < 50; i++ {
		h := wire.Header{Channel: 1, Destination: remote, Source: local, PacketNumber: uint64(i) << (i % 64)}
		p := h.Append(nil)
		junk := make([]byte, 64+i)
		rand.Read(junk)
		send(append(p, junk...))
	}
	// No reply to any of it.
	raw.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := raw.ReadFromUDPAddrPort(make([]byte, 2048)); err == nil {
		t.Fatalf("the server replied %d bytes to hostile traffic", n)
	}
	// The live session is undisturbed, and no state was created.
	roundTrip(t, c, "after")
	if st := c.(*Conn).Session().Stats(); st.PacketsLost > 20 {
		t.Fatalf("hostile traffic disturbed the session: %+v", st)
	}
}

// TestNoGoroutineLeak: closing listeners, dialers, packet conns and
// sessions leaves no goroutine behind.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ln, err := Listen("haven4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go echoServer(ln)
		d := &Dialer{Timeout: 10 * time.Second}
		for i := 0; i < 5; i++ {
			c, err := d.Dial("haven4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c, "x")
			if i%2 == 0 {
				c.Close()
			}
		}
		c, _ := d.Dial("haven4", ln.Addr().String())
		c.(*Conn).Session().Close(0x10001, "done")
		a, _ := ListenPacket("haven4", "127.0.0.1:0")
		b, _ := ListenPacket("haven4", "127.0.0.1:0")
		a.WriteTo([]byte("hi"), b.LocalAddr())
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		b.ReadFrom(make([]byte, 8))
		a.Close()
		b.Close()
		d.Close()
		ln.Close()
	}()
	checkGoroutines(t, before)
}

// checkGoroutines fails the test when, within 5 s, the process does not
// come back to at most before goroutines (goroutines end asynchronously
// after Close).
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestListenerCloseWithAbandonedHandshake: a handshake the server answered
// but whose initiator never used the session (a dial that lost its race,
// or gave up) does not hold a closed listener's socket for the drain
// timeout: the session has nothing to deliver and cannot even send its
// CLOSE, so the drain drops it at once and the port is free again well
// before drainTimeout.
func TestListenerCloseWithAbandonedHandshake(t *testing.T) {
	ln, err := Listen("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := ln.Addr().(*Addr)
	raw, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	priv, _ := wire.GeneratePrivateKey()
	id, _ := secure.NewIdentity(priv)
	ini, err := secure.NewInitiator(id, server.Key, 9, 0, (&Config{}).endpoint(false).Session.Params(), secure.HandshakeConfig{}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pkt, _, _ := ini.Poll(time.Now())
	raw.WriteToUDPAddrPort(pkt, server.Addr)
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := raw.ReadFromUDPAddrPort(make([]byte, 2048)); err != nil {
		t.Fatalf("no handshake response: %v", err)
	} // answered: the server holds a session nobody will use
	start := time.Now()
	ln.Close()
	for {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(server.Addr))
		if err == nil {
			c.Close()
			break
		}
		if time.Since(start) > drainTimeout*3/4 {
			t.Fatalf("the closed listener still holds its port after %v: the abandoned session held the drain", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
