package net

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestCipherChoice: one listener on its default Config serves dialers of
// every Cipher at once (docs/PROTOCOL.md §2.1); each session, on both
// sides, speaks what its dialer chose, CipherAuto following this CPU.
func TestCipherChoice(t *testing.T) {
	ln, err := Listen("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan Cipher, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served <- c.(*Conn).Session().Cipher()
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	auto := CipherChaCha20Poly1305
	if hasAESHardware {
		auto = CipherAES256GCM
	}
	for _, tc := range []struct {
		set, want Cipher
	}{{CipherAuto, auto}, {CipherChaCha20Poly1305, CipherChaCha20Poly1305}, {CipherAES256GCM, CipherAES256GCM}} {
		d := &Dialer{Config: Config{Cipher: tc.set}}
		c, err := d.Dial("haven", ln.Addr().String())
		if err != nil {
			t.Fatalf("%v: %v", tc.set, err)
		}
		msg := []byte("through " + tc.want.String())
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			t.Fatalf("%v: echo %q, %v", tc.set, got, err)
		}
		if cs := c.(*Conn).Session().Cipher(); cs != tc.want {
			t.Errorf("Config.Cipher %v: the dialer's session speaks %v, want %v", tc.set, cs, tc.want)
		}
		if ss := <-served; ss != tc.want {
			t.Errorf("Config.Cipher %v: the listener's session speaks %v, want %v", tc.set, ss, tc.want)
		}
		c.Close()
		d.Close()
	}
}

// TestCipherUnknown: a Cipher that is none of the constants fails the
// dial with a *net.OpError, before anything is sent.
func TestCipherUnknown(t *testing.T) {
	ln, err := Listen("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := &Dialer{Config: Config{Cipher: CipherAES256GCM + 1}}
	defer d.Close()
	_, err = d.Dial("haven", ln.Addr().String())
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		t.Fatalf("dial with an unknown cipher: %v, want a *net.OpError", err)
	}
}

// TestConnConformanceChaCha runs nettest's net.Conn suite on sessions of
// the first construction: TestConnConformance runs it on the default,
// which is AES-256-GCM on CPUs with AES instructions.
func TestConnConformanceChaCha(t *testing.T) {
	nettest.TestConn(t, pipeFactoryOn(t, "haven4", Config{Cipher: CipherChaCha20Poly1305}))
}

// TestCipherText: the text forms round-trip, in any case, and anything
// else is refused.
func TestCipherText(t *testing.T) {
	for _, c := range []Cipher{CipherAuto, CipherChaCha20Poly1305, CipherAES256GCM} {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Cipher = 99
		if err := back.UnmarshalText([]byte(strings.ToUpper(string(b)))); err != nil || back != c {
			t.Errorf("%s: read back as %v, %v", b, back, err)
		}
	}
	var c Cipher
	if c.UnmarshalText([]byte("rc4")) == nil {
		t.Error("rc4 accepted")
	}
	if _, err := (CipherAES256GCM + 1).MarshalText(); err == nil {
		t.Error("an unknown cipher marshalled")
	}
}
