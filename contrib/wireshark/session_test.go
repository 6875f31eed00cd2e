package wireshark

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	gonet "net"
	"net/netip"
	"sync"
	"testing"
	"time"

	hnet "github.com/havenproto/haven/net"
	"github.com/havenproto/haven/wire"
)

// What the captured sessions send. The session runs with default Configs
// (but for the second one's cipher), the shape of `haven demo`, small:
// stream channels echoed byte for byte, a refused service, a channel closed
// early, a datagram channel with small datagrams and one that must be
// fragmented, and a session closed with a code and reason.
const (
	bulkSize      = 24 << 10 // the first stream channel's bytes, each way
	smallDatagram = 5        // datagrams of 20 + 7i bytes
	bigDatagram   = 65507    // the largest datagram: fragmented (§5.9)
	closeCode     = 0x10007  // an application code for the session's CLOSE
	closeReason   = "capture done"
	refusedName   = "no-such-service"
)

// sent is what a captured session carried, for the checks.
type sent struct {
	client, server hnet.PublicKey
	suite          wire.Suite
	bulk, hello    []byte   // stream 1 (default service) and stream 3 ("echo")
	datagrams      [][]byte // in order of sending
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>9) ^ seed
	}
	return b
}

// echoServer serves the default and "echo" stream services and the
// default datagram service of h, echoing everything, until h closes.
func echoServer(t *testing.T, h *hnet.Host) {
	t.Helper()
	for _, svc := range []string{"", "echo"} {
		ln, err := h.Listen(svc)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for i := 0; i < 1000; i++ { // until the host closes
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					io.Copy(c, c)
					c.(*hnet.Conn).CloseWrite()
					io.Copy(io.Discard, c)
				}()
			}
		}()
	}
	pc, err := h.ListenPacket("")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1<<16)
		for i := 0; i < 1<<20; i++ { // until the host closes
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

// startServer opens a Host on loopback with the default config, echoing.
func startServer(t *testing.T, network string) *hnet.Host {
	t.Helper()
	lc := hnet.ListenConfig{}
	h, err := lc.ListenHost(context.Background(), network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	echoServer(t, h)
	return h
}

// echo writes data on c, half-closes, and checks that the same comes back.
func echo(c gonet.Conn, data []byte) error {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		werr <- errors.Join(err, c.(*hnet.Conn).CloseWrite())
	}()
	got, err := io.ReadAll(c)
	if err := errors.Join(<-werr, err); err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echo of %d bytes: got %d bytes, not the same", len(data), len(got))
	}
	return nil
}

// runSession dials the server at addr (the relay in front of the server
// whose key is key) over network and runs the captured exchange. cipher
// is the dialer's Config.Cipher (CipherAuto: the default Config).
func runSession(t *testing.T, network string, key hnet.PublicKey, addr netip.AddrPort, cipher hnet.Cipher, full bool) sent {
	t.Helper()
	d := &hnet.Dialer{Config: hnet.Config{Cipher: cipher}, Timeout: 20 * time.Second}
	defer d.Close()
	target := (&hnet.Addr{Key: key, Addr: addr}).String()
	c, err := d.Dial(network, target)
	if err != nil {
		t.Fatal(err)
	}
	s := c.(*hnet.Conn).Session()
	out := sent{server: key, client: c.LocalAddr().(*hnet.Addr).Key, bulk: pattern(bulkSize, 1), hello: []byte("hello, haven")}
	out.suite = wire.SuiteChaChaPoly
	if s.Cipher() == hnet.CipherAES256GCM {
		out.suite = wire.SuiteAESGCM
	}
	if !full {
		out.bulk = pattern(3000, 2)
	}
	// Channel 1: the first Dial's stream.
	if err := echo(c, out.bulk); err != nil {
		t.Fatalf("stream 1: %v", err)
	}
	c.Close()
	// Channel 3: a stream to the "echo" service at priority 1.
	c3, err := s.OpenStream("echo", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(c3, out.hello); err != nil {
		t.Fatalf("stream 3: %v", err)
	}
	c3.Close()
	if full {
		// Channel 5: a service nobody serves (REFUSE).
		c5, err := s.OpenStream(refusedName, 3)
		if err != nil {
			t.Fatal(err)
		}
		c5.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c5.Read(make([]byte, 1)); err == nil {
			t.Fatal("a stream to a service nobody serves read data")
		}
		c5.Close()
		// Channel 7: closed while the echo still comes (CLOSE, RESET).
		c7, err := s.OpenStream("", 3)
		if err != nil {
			t.Fatal(err)
		}
		c7.Write(pattern(2000, 3))
		c7.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.ReadFull(c7, make([]byte, 100))
		c7.Close()
		// Channel 9: datagrams, echoed.
		dg, err := s.OpenDatagram("", 3)
		if err != nil {
			t.Fatal(err)
		}
		for i := range smallDatagram {
			out.datagrams = append(out.datagrams, pattern(20+7*i, byte(0x40+i)))
		}
		out.datagrams = append(out.datagrams, pattern(bigDatagram, 0x55))
		var wg sync.WaitGroup
		wg.Add(1)
		got := 0
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<16)
			dg.SetReadDeadline(time.Now().Add(10 * time.Second))
			for got < len(out.datagrams) {
				if _, err := dg.Read(buf); err != nil {
					return
				}
				got++
			}
		}()
		for _, p := range out.datagrams {
			if _, err := dg.Write(p); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		if got != len(out.datagrams) {
			t.Fatalf("%d of %d datagrams came back", got, len(out.datagrams))
		}
		dg.Close()
	}
	s.Close(closeCode, closeReason)
	// Let the CLOSE reach the server before the dialer's sockets close.
	time.Sleep(100 * time.Millisecond)
	return out
}
