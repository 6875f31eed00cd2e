package net

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func packetPair(t *testing.T) (a, b net.PacketConn) {
	t.Helper()
	a, err := ListenPacket("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err = ListenPacket("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func payload(size, seed int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(seed*31 + i*7 + i>>8)
	}
	if size >= 4 {
		p[0], p[1], p[2], p[3] = byte(size), byte(size>>8), byte(size>>16), byte(seed)
	}
	return p
}

// TestPacketConnBoundaries: datagrams of every size class arrive whole and
// byte-exact, one per ReadFrom, with the sender's address; the reply to
// that address reaches the sender. Datagrams are unreliable even on
// loopback (a full socket buffer drops them), so each is sent until one
// copy arrives (at most 5 times), and the test checks what arrives.
func TestPacketConnBoundaries(t *testing.T) {
	a, b := packetPair(t)
	sizes := []int{1, 2, 3, 100, 1200, 1371, 1372, 1400, 1452, 2800, 9000, 30000, 65506, 65507}
	for i := 0; i < 40; i++ {
		sizes = append(sizes, 4+(i*7919)%65500)
	}
	buf := make([]byte, 70000)
	var from net.Addr
	for i, n := range sizes {
		p := payload(n, i)
		for attempt := 0; ; attempt++ {
			if attempt == 5 {
				t.Fatalf("datagram of %d bytes lost 5 times", n)
			}
			if _, err := a.WriteTo(p, b.LocalAddr()); err != nil {
				t.Fatalf("WriteTo %d bytes: %v", n, err)
			}
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, addr, err := b.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if err != nil {
				t.Fatalf("ReadFrom: %v", err)
			}
			for got != n || !bytes.Equal(buf[:got], p) {
				// A late copy of an earlier datagram: it must be one of them, whole.
				if got < 4 || got != int(buf[0])|int(buf[1])<<8|int(buf[2])<<16 {
					t.Fatalf("mangled datagram of %d bytes (want %d)", got, n)
				}
				if got, addr, err = b.ReadFrom(buf); err != nil {
					break
				}
			}
			if err == nil {
				from = addr
				break
			}
		}
	}
	if from.(*Addr).Key != a.LocalAddr().(*Addr).Key {
		t.Fatalf("sender %v, want %v", from, a.LocalAddr())
	}
	// Reply to the address ReadFrom gave.
	if _, err := b.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, addr, err := a.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "pong" || addr.(*Addr).Key != b.LocalAddr().(*Addr).Key {
		t.Fatalf("reply: %q from %v, %v", buf[:n], addr, err)
	}
	// Too large: an error, nothing sent.
	if _, err := a.WriteTo(make([]byte, 65508), b.LocalAddr()); err == nil {
		t.Fatal("65,508-byte datagram accepted")
	}
	// A short buffer truncates, as UDP does.
	a.WriteTo(payload(1000, 1), b.LocalAddr())
	small := make([]byte, 10)
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := b.ReadFrom(small); err != nil || n != 10 || !bytes.Equal(small, payload(1000, 1)[:10]) {
		t.Fatalf("truncated read: %d %v", n, err)
	}
}

func TestPacketConnDeadlinesAndClose(t *testing.T) {
	a, _ := packetPair(t)
	buf := make([]byte, 10)
	a.SetReadDeadline(time.Now().Add(-time.Second))
	_, _, err := a.ReadFrom(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
	// A new deadline wakes a blocked ReadFrom.
	a.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, _, err := a.ReadFrom(buf)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	a.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("woken read: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a new deadline did not wake ReadFrom")
	}
	// Close unblocks ReadFrom with net.ErrClosed.
	a.SetReadDeadline(time.Time{})
	go func() {
		_, _, err := a.ReadFrom(buf)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	a.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock ReadFrom")
	}
	if _, err := a.WriteTo([]byte("x"), a.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}
