package main

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havenproto/haven/mux"
	hnet "github.com/havenproto/haven/net"
	"github.com/havenproto/haven/wire"
)

// testKeys returns n distinct public keys.
func testKeys(t *testing.T, n int) []hnet.PublicKey {
	t.Helper()
	var keys []hnet.PublicKey
	for range n {
		k, err := wire.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.PublicKey())
	}
	return keys
}

func TestParseAuthorizedKeys(t *testing.T) {
	k := testKeys(t, 3)
	text := "# clients of the echo server\n" +
		"\n" +
		k[0].String() + "\n" +
		"   " + k[1].String() + "   # bob's laptop\r\n" +
		"\t# " + k[2].String() + " is commented out\n" +
		k[0].String() + "#again, no space\n" +
		"   \n"
	got, err := parseAuthorizedKeys(strings.NewReader(text), "ak")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[k[2]]; len(got) != 2 || ok {
		t.Fatalf("parsed %d keys (%v), want the first two only", len(got), got)
	}
	for _, want := range k[:2] {
		if _, ok := got[want]; !ok {
			t.Fatalf("key %s missing", want)
		}
	}
	if got, err := parseAuthorizedKeys(strings.NewReader("# nobody yet\n\n"), "ak"); err != nil || len(got) != 0 {
		t.Fatalf("a file of comments: %v, %d keys", err, len(got))
	}

	for _, tt := range []struct {
		text, want string
	}{
		{k[0].String() + "\nnot-a-key\n", `authorized keys ak, line 2: "not-a-key" is not a public key`},
		{"\n\n" + k[0].String() + " " + k[1].String() + "\n", "authorized keys ak, line 3: want one public key per line"},
		{k[0].String() + " bob\n", "authorized keys ak, line 1: want one public key per line"},
		{k[0].String()[:42] + "\n", "authorized keys ak, line 1: "},
		{strings.Repeat("A", 43) + "\n", "authorized keys ak, line 1: "}, // the all-zero key
		{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 user@host\n", "line 1: want one public key per line"},
		{strings.Repeat("x", 70<<10) + "\n", "authorized keys ak: a line longer than 64 KiB"},
	} {
		got, err := parseAuthorizedKeys(strings.NewReader(tt.text), "ak")
		if err == nil || !strings.Contains(err.Error(), tt.want) || got != nil {
			t.Errorf("%.60q: %v, want an error containing %q", tt.text, err, tt.want)
		}
	}
}

func TestReadAuthorizedKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "authorized_keys")
	k := testKeys(t, 1)
	if err := os.WriteFile(path, []byte(k[0].String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := readAuthorizedKeys(path); err != nil || len(got) != 1 {
		t.Fatalf("mode 0644: %v, %d keys", err, len(got))
	}
	for _, perm := range []os.FileMode{0o666, 0o664, 0o646} {
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
		if _, err := readAuthorizedKeys(path); err == nil || !strings.Contains(err.Error(), "must not be writable by others") {
			t.Errorf("mode %04o: %v", perm, err)
		}
	}
	if _, err := readAuthorizedKeys(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := readAuthorizedKeys(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}

// writeAuthorized writes keys (one a line, with a comment) to path,
// replacing the file as an editor would.
func writeAuthorized(t *testing.T, path string, keys ...hnet.PublicKey) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# haven authorized keys\n\n")
	for i, k := range keys {
		b.WriteString(k.String() + " # client " + string(rune('a'+i)) + "\n")
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// catEcho runs haven cat with the key file key against addr and reports
// whether "ping" came back; out is its stderr.
func catEcho(t *testing.T, key, addr, timeout string) (ok bool, errOut string) {
	t.Helper()
	out, errOut, code := runHaven(t, "ping\n", "cat", "-key", key, "-timeout", timeout, addr)
	return code == 0 && out == "ping\n", errOut
}

// TestServeAuthorizedKeys: haven serve -authorized-keys admits the listed
// keys only; an unlisted key's cat gets no answer. SIGHUP re-reads the
// file: an added key connects, a removed key's live session is closed
// while another listed key's session goes on, and a malformed file keeps
// the keys in force. A malformed file at startup is an error naming the
// line.
func TestServeAuthorizedKeys(t *testing.T) {
	keyA, pubA := writeKey(t, 0o600)
	keyB, pubB := writeKey(t, 0o600)
	keyC, pubC := writeKey(t, 0o600)
	authPath := filepath.Join(t.TempDir(), "authorized_keys")
	writeAuthorized(t, authPath, pubA, pubB)

	p, addr := serveListening(t, "-echo", "-authorized-keys", authPath)
	p.waitLine(t, "authorized keys: 2 from "+authPath, 10*time.Second)

	// Live sessions of A and B, through the library.
	conns := map[string]net.Conn{}
	for name, key := range map[string]string{"a": keyA, "b": keyB} {
		priv, err := readKeyFile(key)
		if err != nil {
			t.Fatal(err)
		}
		d := &hnet.Dialer{Config: hnet.Config{PrivateKey: priv}, Timeout: 10 * time.Second}
		defer d.Close()
		c, err := d.Dial("haven", addr)
		if err != nil {
			t.Fatalf("listed key %s: %v", name, err)
		}
		defer c.Close()
		echoLine(t, c, "hello "+name)
		conns[name] = c
	}
	if ok, errOut := catEcho(t, keyC, addr, "2s"); ok || !strings.Contains(errOut, "no answer within 2s") {
		t.Fatalf("unlisted key: cat succeeded %v, stderr %q; want no answer", ok, errOut)
	}
	if ok, errOut := catEcho(t, keyB, addr, "10s"); !ok {
		t.Fatalf("listed key with haven cat -key: %s", errOut)
	}

	// Reload: C added, A removed.
	writeAuthorized(t, authPath, pubB, pubC)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line := p.waitLine(t, "reloaded authorized keys: ", 10*time.Second)
	if m := regexp.MustCompile(`^reloaded authorized keys: 2 from .*; closed [1-9]\d* sessions of removed keys$`).FindString(line); m == "" {
		t.Fatalf("reload logged %q", line)
	}
	conns["a"].SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := conns["a"].Read(make([]byte, 1))
	var ce *mux.CloseError
	if !errors.As(err, &ce) || ce.Code != hnet.CloseShuttingDown || ce.Reason != "key no longer authorized" || !ce.Remote {
		t.Fatalf("removed key's session: %v, want closed by the server", err)
	}
	echoLine(t, conns["b"], "b survives the reload")
	if ok, errOut := catEcho(t, keyC, addr, "10s"); !ok {
		t.Fatalf("added key: %s", errOut)
	}
	if ok, errOut := catEcho(t, keyA, addr, "2s"); ok || !strings.Contains(errOut, "no answer within 2s") {
		t.Fatalf("removed key: cat succeeded %v, stderr %q; want no answer", ok, errOut)
	}

	// A malformed file on SIGHUP: logged, the keys in force stay.
	if err := os.WriteFile(authPath, []byte(pubB.String()+"\nnonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line = p.waitLine(t, "haven: reloading authorized keys: ", 10*time.Second)
	if !strings.Contains(line, authPath+", line 2") || !strings.HasSuffix(line, "keeping the 2 keys in force") {
		t.Fatalf("bad reload logged %q", line)
	}
	echoLine(t, conns["b"], "b still")
	if ok, errOut := catEcho(t, keyC, addr, "10s"); !ok {
		t.Fatalf("C after a failed reload: %s", errOut)
	}
	p.stop(t)

	// At startup a malformed file is an error naming file and line.
	_, errOut, code := runHaven(t, "", "serve", "-key", keyA, "-echo", "-listen", "127.0.0.1:0", "-authorized-keys", authPath)
	if code != exitError || !strings.HasPrefix(errOut, "haven: authorized keys "+authPath+", line 2: ") {
		t.Fatalf("malformed file at startup: status %d, stderr %q", code, errOut)
	}
}

// echoLine writes msg on c and checks that the echo server sends it back.
func echoLine(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo %q: %q, %v", msg, buf, err)
	}
}
