package net

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// pipeFactory dials channels to one listener through one Dialer: every
// pipe is a new channel on the same session.
func pipeFactory(t *testing.T) func() (net.Conn, net.Conn, func(), error) {
	return pipeFactoryOn(t, "haven4", Config{})
}

// pipeFactoryOn is pipeFactory on network (both ends) with the Dialer's
// Config cfg.
func pipeFactoryOn(t *testing.T, network string, cfg Config) func() (net.Conn, net.Conn, func(), error) {
	ln, err := Listen(network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &Dialer{Timeout: 10 * time.Second, Config: cfg}
	t.Cleanup(func() {
		d.Close()
		ln.Close()
	})
	return func() (net.Conn, net.Conn, func(), error) {
		type accepted struct {
			c   net.Conn
			err error
		}
		ch := make(chan accepted, 1)
		go func() {
			c, err := ln.Accept()
			ch <- accepted{c, err}
		}()
		c1, err := d.Dial(network, ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		a := <-ch
		if a.err != nil {
			c1.Close()
			return nil, nil, nil, a.err
		}
		return c1, a.c, func() { c1.Close(); a.c.Close() }, nil
	}
}

// TestConnConformance runs x/net/nettest's net.Conn conformance suite on
// stream channels.
func TestConnConformance(t *testing.T) {
	nettest.TestConn(t, pipeFactory(t))
}

func TestDialErrors(t *testing.T) {
	if _, err := Dial("tcp", "x@y:1"); err == nil {
		t.Fatal("network tcp accepted")
	} else if ue := new(net.UnknownNetworkError); !errors.As(err, ue) {
		t.Fatalf("unknown network: %T %v", err, err)
	}
	if _, err := Dial("haven", "not an address"); err == nil {
		t.Fatal("bad address accepted")
	}
	ln, err := (&ListenConfig{Service: "web"}).Listen(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := &Dialer{Service: "ftp", Timeout: 5 * time.Second}
	defer d.Close()
	_, err = d.Dial("haven4", ln.Addr().String())
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" || !strings.Contains(err.Error(), `no service "ftp"`) {
		t.Fatalf("dial to an unserved service: %v", err)
	}
}

func TestEOFAndClose(t *testing.T) {
	mk := pipeFactory(t)
	c1, c2, stop, err := mk()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c1.Write([]byte("bye"))
	c1.(*Conn).CloseWrite()
	b, err := io.ReadAll(c2)
	if string(b) != "bye" || err != nil {
		t.Fatalf("read %q, %v", b, err)
	}
	if _, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after EOF: %v (want bare io.EOF)", err)
	}
	c2.Close()
	if _, err := c2.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	c1.SetReadDeadline(time.Now().Add(-time.Second))
	_, err = c1.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
}
