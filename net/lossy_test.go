package net

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/udpproxy"
)

// streamBytes is stream k's content: deterministic, position-dependent.
func streamBytes(k, size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i*31 + k*7 + i>>9)
	}
	return p
}

// viaProxy starts an echo listener and a lossy proxy in front of it, and
// returns the address to dial (the listener's key at the proxy's address).
func viaProxy(t *testing.T, cfg udpproxy.Config) (string, *udpproxy.Proxy) {
	t.Helper()
	return proxyTo(t, echoListener(t, ListenConfig{}), cfg)
}

// proxyTo puts a lossy proxy in front of ln.
func proxyTo(t *testing.T, ln net.Listener, cfg udpproxy.Config) (string, *udpproxy.Proxy) {
	server := ln.Addr().(*Addr)
	px, err := udpproxy.New(netip.MustParseAddrPort("127.0.0.1:0"), server.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	return (&Addr{Key: server.Key, Addr: px.Addr()}).String(), px
}

// echoCheck writes stream k's bytes on c, half-closes, and checks the echo.
func echoCheck(c net.Conn, k, size int) error {
	want := streamBytes(k, size)
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		if err == nil {
			err = c.(*Conn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if werr := <-errc; werr != nil {
		return fmt.Errorf("stream %d write: %w", k, werr)
	}
	if err != nil {
		return fmt.Errorf("stream %d read after %d bytes: %w", k, len(got), err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("stream %d: %d bytes back, want %d, equal prefix mismatch", k, len(got), size)
	}
	return nil
}

// TestLossyProxy: through 3 % loss, 1 % duplication, 2 % reordering and
// 0.5 % corruption both ways, four concurrent 8 MiB channels come back
// byte-exact.
func TestLossyProxy(t *testing.T) {
	addr, px := viaProxy(t, udpproxy.Config{Loss: 0.03, Duplicate: 0.01, Reorder: 0.02, Corrupt: 0.005, Seed: 1})
	d := &Dialer{} // the defaults, as everywhere under loss (docs/SCENARIOS.md)
	defer d.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for k := 0; k < 4; k++ {
		c, err := d.Dial("haven4", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			errs <- echoCheck(c, k, 8<<20)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := px.Stats()
	if st.ToTarget.Lost == 0 || st.ToClient.Corrupted == 0 || st.ToTarget.Duplicated == 0 {
		t.Fatalf("the proxy did not impair the traffic: %+v", st)
	}
}

// TestMigration: the proxy changes its source port every 300 ms, so the
// server sees the client move again and again. One channel streams until
// four rotations have happened (bounded: 1 GiB or 60 s) and every echoed
// byte is checked.
func TestMigration(t *testing.T) {
	ln, err := Listen("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepted <- c.(*Conn)
		io.Copy(c, c)
		c.(*Conn).CloseWrite()
	}()
	addr, px := proxyTo(t, ln, udpproxy.Config{RotatePort: 300 * time.Millisecond, Seed: 2})
	d := &Dialer{Timeout: 30 * time.Second}
	defer d.Close()
	c, err := d.Dial("haven4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(90 * time.Second))
	stop := time.Now().Add(60 * time.Second)
	sent, got := echoPattern(t, c, 64<<10, func(int) bool { return px.Stats().Rotations < 4 && time.Now().Before(stop) },
		func() string { return fmt.Sprintf("%d rotations", px.Stats().Rotations) })
	if got != sent {
		t.Fatalf("echoed %d of %d bytes", got, sent)
	}
	if r := px.Stats().Rotations; r < 4 {
		t.Fatalf("only %d port rotations during the transfer", r)
	}
	// The server validated the new paths and moved to them (it did not
	// just keep using old ports while the proxy kept them open).
	srv := <-accepted
	defer srv.Close()
	if moves := srv.Session().PathChanges(); moves < 3 {
		t.Fatalf("server moved to a validated new path %d times over 4 rotations", moves)
	}
	t.Logf("%d MiB echoed across %d source-port changes, %d validated moves", got>>20, px.Stats().Rotations, srv.Session().PathChanges())
}

// echoPattern writes a known byte pattern on c in chunks of chunk bytes
// while more(sent) holds (and below 1 GiB), then half-closes, while it
// reads the echo back and checks every byte; it returns the bytes sent and
// echoed. where describes the path's state for a failure message.
func echoPattern(t *testing.T, c net.Conn, chunk int, more func(sent int) bool, where func() string) (sent, got int) {
	t.Helper()
	pattern := func(off int) byte { return byte(off*31 + off>>9) }
	werr := make(chan error, 1)
	go func() {
		b := make([]byte, chunk)
		for sent < 1<<30 && more(sent) {
			for i := range b {
				b[i] = pattern(sent + i)
			}
			n, err := c.Write(b)
			sent += n
			if err != nil {
				werr <- err
				return
			}
		}
		werr <- c.(*Conn).CloseWrite()
	}()
	buf := make([]byte, 64<<10)
	for got <= 1<<30 { // bounded: at most what the writer may send
		n, err := c.Read(buf)
		for i := range n {
			if buf[i] != pattern(got+i) {
				t.Fatalf("byte %d differs (%s)", got+i, where())
			}
		}
		got += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes (%s): %v", got, where(), err)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	return sent, got
}
