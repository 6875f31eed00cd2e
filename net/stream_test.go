package net

import (
	"bytes"
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
