package net

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
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

	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i*11 + i>>13)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		c.(*Conn).CloseWrite()
		wrote <- err
	}()
	got := make([]byte, 0, len(data)) // grown once: a growing buffer's copies stall the reader
	var echoed atomic.Int64
	var stall time.Duration // the longest wait for a Read, once data flowed
	var stallAt time.Time
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		c.SetReadDeadline(time.Now().Add(3 * time.Minute))
		last := time.Now()
		for {
			n, err := c.Read(buf)
			now := time.Now()
			if echoed.Load() > 0 {
				if now.Sub(last) > stall {
					stall, stallAt = now.Sub(last), last
				}
			}
			last = now
			got = append(got, buf[:n]...)
			echoed.Add(int64(n))
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				read <- err
				return
			}
		}
	}()
	waitEchoed := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); echoed.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d bytes echoed after 2 minutes", echoed.Load(), n)
			}
		}
	}
	moveOff := func(dark netip.Addr) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); active() == dark; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the session stayed on the dark path from %v: %+v", dark, s.Paths())
			}
		}
	}

	waitEchoed(16 << 20)
	px.BlockClient(one, true) // the path in use goes dark
	moveOff(one)
	waitEchoed(32 << 20)
	px.BlockClient(one, false) // it comes back, and the other goes dark
	px.BlockClient(two, true)
	moveOff(two)
	if a := active(); a != one {
		t.Fatalf("the session moved to %v, want back to %v", a, one)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := <-read; err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo across two failovers: %d of %d bytes, %v", len(got), len(data), err)
	}
	if n := s.PathChanges(); n < 2 {
		t.Errorf("PathChanges %d after two failovers", n)
	}
	if stall > 2*time.Second {
		t.Errorf("a read stalled %v (from %v) across a failover, want well under 2 s", stall, stallAt.Format("15:04:05.000"))
	}
}

var _ net.Conn = (*Conn)(nil)
