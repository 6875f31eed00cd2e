package net

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestStreamConnConformance runs nettest's net.Conn suite on channels of
// sessions over the stream transport ("haven+tcp", docs/PROTOCOL.md §8):
// the same channels as over UDP, carried by TCP.
func TestStreamConnConformance(t *testing.T) {
	ln, err := Listen("haven4+tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &Dialer{Timeout: 10 * time.Second}
	t.Cleanup(func() {
		d.Close()
		ln.Close()
	})
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		ch := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			ch <- c
		}()
		c1, err := d.Dial("haven4+tcp", ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		c2 := <-ch
		if c2 == nil {
			c1.Close()
			return nil, nil, nil, errors.New("accept failed")
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestStreamBulk: 16 MiB through "haven+tcp" arrive byte-exact, and a
// UDP dial to the TCP-only listener finds nobody.
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
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i ^ i>>9)
	}
	go func() {
		c.Write(data)
		c.(*Conn).CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo over haven+tcp: %d of %d bytes, %v", len(got), len(data), err)
	}
	ud := &Dialer{Timeout: 1500 * time.Millisecond}
	defer ud.Close()
	if _, err := ud.Dial("haven", ln.Addr().String()); err == nil {
		t.Fatal("a UDP dial reached a TCP-only listener")
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
	for _, network := range []string{"haven4", "haven4+tcp"} {
		d := &Dialer{}
		c, err := d.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		msg := []byte("over " + network)
		c.Write(msg)
		got := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%s: echo %q, %v", network, got, err)
		}
		c.Close()
		d.Close()
	}

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
