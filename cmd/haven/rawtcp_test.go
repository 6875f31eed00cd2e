package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection, wrapped by
// rawTCPConn.
func tcpPair(t *testing.T) (a, b halfCloser) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	a, b = rawTCPConn(c.(*net.TCPConn)), rawTCPConn(s.(*net.TCPConn))
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestRawTCP: the raw-syscall TCP wrapper carries bytes exactly both
// ways, with half-close, through io.Copy (which must use its Read and
// Write: it offers no WriteTo or ReadFrom), and reports end of stream,
// deadlines, use after Close and a write to a closed peer as net.TCPConn
// does.
func TestRawTCP(t *testing.T) {
	a, b := tcpPair(t)
	if runtime.GOOS == "linux" {
		if _, ok := a.(*rawTCP); !ok {
			t.Fatalf("rawTCPConn on Linux returned %T", a)
		}
	}
	if _, ok := a.(io.WriterTo); ok {
		t.Fatal("the wrapper offers WriteTo: io.Copy would bypass its Read")
	}
	if _, ok := a.(io.ReaderFrom); ok {
		t.Fatal("the wrapper offers ReadFrom: io.Copy would bypass its Write")
	}
	for _, dir := range []struct {
		name     string
		from, to halfCloser
	}{{"a to b", a, b}, {"b to a", b, a}} {
		want := make([]byte, 4<<20+123)
		rand.Read(want)
		errc := make(chan error, 1)
		go func() {
			_, err := io.Copy(dir.from, bytes.NewReader(want))
			if err == nil {
				err = dir.from.CloseWrite()
			}
			errc <- err
		}()
		var got bytes.Buffer
		if _, err := io.Copy(&got, dir.to); err != nil {
			t.Fatalf("%s: read: %v", dir.name, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("%s: write: %v", dir.name, err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("%s: %d bytes arrived, %d sent, or they differ", dir.name, got.Len(), len(want))
		}
		if n, err := dir.to.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("%s: read after the end: %d, %v; want io.EOF", dir.name, n, err)
		}
	}

	c, d := tcpPair(t)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	if n, err := c.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d, %v", n, err)
	}
	d.Close()
	var werr error
	for i := 0; i < 1000 && werr == nil; i++ { // the peer's reset arrives after a write or two
		_, werr = c.Write(make([]byte, 64<<10))
	}
	var oe *net.OpError
	if werr == nil || !errors.As(werr, &oe) || oe.Op != "write" {
		t.Fatalf("writes to a closed peer: %v, want a *net.OpError", werr)
	}
	c.Close()
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
}
