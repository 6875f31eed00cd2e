package net

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/wire"
)

// lockedBuf is a bytes.Buffer safe for the sessions' goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// echoOnce dials addr with d and round-trips msg on a new stream.
func echoOnce(t *testing.T, d *Dialer, addr, msg string) {
	t.Helper()
	c, err := d.DialContext(context.Background(), "haven4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.(*Conn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != msg {
		t.Fatalf("echo: %q, %v", got, err)
	}
}

// keyLogLines checks every line of a key log and returns them.
func keyLogLines(t *testing.T, text string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for _, l := range lines {
		if f := strings.Fields(l); len(f) != 7 || f[0] != secure.KeyLogLabel || len(f[6]) != 64 {
			t.Fatalf("key log line %q", l)
		}
	}
	return lines
}

// TestKeyLogEnv: with HAVEN_KEYLOGFILE set and default Configs, the
// server and the client both append their keys to the file (mode 0600):
// two lines each for the session's one key set, naming the client's and
// the server's peer ids. Config.KeyLog takes precedence over the file.
// Without either, no key is written anywhere (the variable unset).
func TestKeyLogEnv(t *testing.T) {
	name := filepath.Join(t.TempDir(), "keys.log")
	t.Setenv(KeyLogEnv, name)
	ln := echoListener(t, ListenConfig{})
	server := ln.Addr().(*Addr)
	d := &Dialer{}
	defer d.Close()
	echoOnce(t, d, server.String(), "logged")

	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key log mode %v, want 0600", st.Mode().Perm())
	}
	// The server installs its keys when it answers, the client on the
	// response: both have by the time the echo is back.
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := keyLogLines(t, string(raw))
	if len(lines) != 4 {
		t.Fatalf("%d key log lines, want 4 (2 per side):\n%s", len(lines), raw)
	}
	suite := wire.SuiteChaChaPoly
	if (&Config{}).Cipher.suite() == wire.SuiteAESGCM {
		suite = wire.SuiteAESGCM
	}
	tag := suite.AuthTag(server.Key)
	for _, l := range lines {
		f := strings.Fields(l)
		src, dst := f[2], f[3]
		if !strings.HasPrefix(src, hex.EncodeToString(tag[:])) && !strings.HasPrefix(dst, hex.EncodeToString(tag[:])) {
			t.Fatalf("line %q names neither direction's server tag %x", l, tag)
		}
	}

	// Config.KeyLog wins over the variable.
	buf := &lockedBuf{}
	d2 := &Dialer{Config: Config{KeyLog: buf}}
	defer d2.Close()
	echoOnce(t, d2, server.String(), "to a writer")
	if got := len(keyLogLines(t, buf.String())); got != 2 {
		t.Fatalf("Config.KeyLog got %d lines, want 2", got)
	}
	raw2, _ := os.ReadFile(name)
	if n := len(keyLogLines(t, string(raw2))); n != 6 { // + the server's 2
		t.Fatalf("file has %d lines after a dial with Config.KeyLog, want 6", n)
	}

	// Off: no variable, no writer.
	t.Setenv(KeyLogEnv, "")
	if (&Config{}).keyLog() != nil {
		t.Fatal("a key log with neither Config.KeyLog nor HAVEN_KEYLOGFILE")
	}
}
