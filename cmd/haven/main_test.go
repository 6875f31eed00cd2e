package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hnet "github.com/havenproto/haven/net"
	"github.com/havenproto/haven/wire"
)

// havenBin is the haven binary, built once by TestMain.
var havenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "haven-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	havenBin = filepath.Join(dir, "haven")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", havenBin, ".").CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building haven: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running haven (or systemd-socket-activate) process whose
// stderr lines are collected.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{} // closed once the process has been waited for
	err   error         // from Wait, valid after done
	mu    sync.Mutex
	log   bytes.Buffer // all of stderr
}

// start runs name with args, stdin and stdout as given (nil: none), and
// kills it at the end of the test if it is still running.
func start(t *testing.T, stdin io.Reader, stdout io.Writer, env []string, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 1000), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		p.err = cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// waitLine returns the first stderr line (from those not yet read) that
// starts with prefix.
func (p *proc) waitLine(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-p.done:
			// Drain what was read before the exit.
			for {
				select {
				case l := <-p.lines:
					if strings.HasPrefix(l, prefix) {
						return l
					}
				default:
					t.Fatalf("%s exited (%v) before a line %q; stderr:\n%s", p.cmd.Args[0], p.err, prefix, p.stderr())
				}
			}
		case <-deadline:
			t.Fatalf("no line %q within %v; stderr:\n%s", prefix, timeout, p.stderr())
		}
	}
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v; stderr:\n%s", p.cmd.Args[0], timeout, p.stderr())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.cmd.Args[0], p.err)
	}
	return 0
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM; stderr:\n%s", code, p.stderr())
	}
}

// runHaven runs the haven binary to completion and returns its stdout,
// stderr and exit status.
func runHaven(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, havenBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("haven %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// writeKey writes a new private key to a file with mode perm and returns
// the file's path and the key's public key.
func writeKey(t *testing.T, perm os.FileMode) (path string, pub wire.PublicKey) {
	t.Helper()
	k, err := wire.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "server.key")
	if err := os.WriteFile(path, []byte(k.Text()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return path, k.PublicKey()
}

// serveListening starts "haven serve" on a loopback port of its choosing
// and returns it with the address it logged.
func serveListening(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	key, pub := writeKey(t, 0o600)
	p := start(t, nil, nil, nil, havenBin, append([]string{"serve", "-key", key, "-listen", "127.0.0.1:0"}, args...)...)
	line := p.waitLine(t, "listening on ", 10*time.Second)
	addr := strings.TrimPrefix(line, "listening on ")
	if !strings.HasPrefix(addr, pub.String()+"@127.0.0.1:") {
		t.Fatalf("serve logged %q, want the key %s and 127.0.0.1", line, pub)
	}
	return p, addr
}

func TestGenkeyPubkey(t *testing.T) {
	var priv bytes.Buffer
	if err := run([]string{"genkey"}, nil, &priv); err != nil {
		t.Fatal(err)
	}
	k, err := wire.ParsePrivateKey(priv.String())
	if err != nil {
		t.Fatalf("genkey output %q: %v", priv.String(), err)
	}
	var pub bytes.Buffer
	if err := run([]string{"pubkey"}, strings.NewReader(priv.String()), &pub); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(pub.String()); got != k.PublicKey().String() {
		t.Fatalf("pubkey printed %q, want %q", got, k.PublicKey())
	}
	var again bytes.Buffer
	if err := run([]string{"genkey"}, nil, &again); err != nil || again.String() == priv.String() {
		t.Fatalf("two genkey runs gave the same key (err %v)", err)
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{nil, "", "no command"},
		{[]string{"frobnicate"}, "", `unknown command "frobnicate"`},
		{[]string{"genkey", "x"}, "", "no arguments"},
		{[]string{"pubkey"}, "not a key\n", "invalid private key"},
		{[]string{"pubkey"}, "", "private key"},
		{[]string{"serve", "-echo"}, "", "-key FILE is required"},
		{[]string{"cat"}, "", "usage: haven cat"},
		{[]string{"demo", "extra"}, "", "usage: haven demo"},
	} {
		err := run(tt.args, strings.NewReader(tt.stdin), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err %v, want %q", tt.args, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "not a key") {
			t.Errorf("error echoes private key input: %v", err)
		}
	}
}

// TestUsage: a bare haven and -h list every command; every error is one
// line starting "haven:", with status 2 for a command line haven does not
// understand and 1 for a failure.
func TestUsage(t *testing.T) {
	commands := []string{"genkey", "pubkey", "serve", "cat", "forward", "bench", "demo"}
	out, errOut, code := runHaven(t, "")
	if code != exitUsage || out != "" {
		t.Errorf("haven: status %d, stdout %q; want 2 and the usage on stderr", code, out)
	}
	for _, args := range [][]string{{"-h"}, {"help"}} {
		help, _, code := runHaven(t, "", args...)
		if code != 0 {
			t.Errorf("haven %v: status %d", args, code)
		}
		for _, c := range commands {
			if !strings.Contains(errOut, "\n  "+c+" ") || !strings.Contains(help, "\n  "+c+" ") {
				t.Errorf("usage does not list %s:\n%s", c, help)
			}
		}
		if strings.Contains(help, "not available") {
			t.Errorf("usage still has the old stub:\n%s", help)
		}
	}
	for _, c := range commands[2:] {
		help, _, code := runHaven(t, "", c, "-h")
		if code != 0 || !strings.HasPrefix(help, "usage: haven "+c) {
			t.Errorf("haven %s -h: status %d, output %q", c, code, help)
		}
	}
	key, _ := writeKey(t, 0o600)
	addr := "OpeN7EN9-yzI8ndRFOFQIU2wF4DJOn-LzwGyVhb4umg@127.0.0.1:9"
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"genkey", "x"}, exitUsage, "genkey takes no arguments"},
		{[]string{"serve", "-echo"}, exitUsage, "-key FILE is required"},
		{[]string{"serve", "-key", key}, exitUsage, "exactly one of -echo, -discard and -forward"},
		{[]string{"serve", "-key", key, "-echo", "-discard"}, exitUsage, "exactly one of"},
		{[]string{"serve", "-key", key, "-forward", "nohost"}, exitUsage, "want HOST:PORT"},
		{[]string{"serve", "-key", key, "-forward", "localhost:"}, exitUsage, "want HOST:PORT"},
		{[]string{"serve", "-key", key, "-echo", "-bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"serve", "-key", filepath.Join(t.TempDir(), "none"), "-echo"}, exitError, "no such file"},
		{[]string{"cat"}, exitUsage, "usage: haven cat"},
		{[]string{"cat", "not-an-address"}, exitError, `address "not-an-address": missing '@'`},
		{[]string{"cat", "-timeout", "300ms", addr}, exitError, "no answer within 300ms"},
		{[]string{"forward", addr}, exitUsage, "-L [BINDHOST:]PORT is required"},
		{[]string{"forward", "-L", "http", addr}, exitUsage, "numeric port"},
		{[]string{"bench", "-c", "0", addr}, exitUsage, "want 1 to 1000 channels"},
		{[]string{"bench", "-n", "12Q", addr}, exitUsage, `invalid value "12Q" for flag -n`},
		{[]string{"demo", "extra"}, exitUsage, "usage: haven demo"},
	} {
		out, errOut, code := runHaven(t, "", tt.args...)
		if code != tt.code || out != "" {
			t.Errorf("haven %v: status %d, stdout %q; want status %d", tt.args, code, out, tt.code)
		}
		if !strings.HasPrefix(errOut, "haven: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("haven %v: stderr %q; want one line \"haven: ...%s...\"", tt.args, errOut, tt.want)
		}
	}
}

// TestKeyFilePermissions: serve refuses a key file others may read or
// write, as ssh does, and serves with one only its owner may.
func TestKeyFilePermissions(t *testing.T) {
	for _, perm := range []os.FileMode{0o644, 0o640, 0o606} {
		key, _ := writeKey(t, perm)
		_, errOut, code := runHaven(t, "", "serve", "-key", key, "-echo", "-listen", "127.0.0.1:0")
		want := fmt.Sprintf("haven: key file %s has permissions %04o; it must not be accessible by others (chmod 600)\n", key, perm)
		if code != exitError || errOut != want {
			t.Errorf("mode %04o: status %d, stderr %q; want 1 and %q", perm, code, errOut, want)
		}
	}
	for _, perm := range []os.FileMode{0o600, 0o400} {
		key, _ := writeKey(t, perm)
		p := start(t, nil, nil, nil, havenBin, "serve", "-key", key, "-echo", "-listen", "127.0.0.1:0")
		p.waitLine(t, "listening on ", 10*time.Second)
		p.stop(t)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1000": 1000, "64MiB": 64 << 20, "1G": 1e9, "2 KiB": 2048, "5MB": 5e6, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5M", "12Q", "99999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestLocalAddr(t *testing.T) {
	for in, want := range map[string]string{"8080": "127.0.0.1:8080", "0.0.0.0:80": "0.0.0.0:80",
		":9000": ":9000", "*:9000": ":9000", "[::1]:22": "[::1]:22", "localhost:1": "localhost:1"} {
		if got, err := localAddr(in); err != nil || got != want {
			t.Errorf("localAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "http", "host:", "1:2:3", "99999"} {
		if got, err := localAddr(in); err == nil {
			t.Errorf("localAddr(%q) = %q, want an error", in, got)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i))
	}
	if p50, p99 := percentiles(s); p50 != 50 || p99 != 99 {
		t.Fatalf("p50 %d, p99 %d; want 50, 99", p50, p99)
	}
	if p50, p99 := percentiles(nil); p50 != 0 || p99 != 0 {
		t.Fatal("percentiles of nothing")
	}
}

// TestAddressStartingWithDash: a public key may start with '-'; its
// address is still the positional ADDR, after flags or alone.
func TestAddressStartingWithDash(t *testing.T) {
	var key wire.PublicKey
	key[0] = 0xf8 // top six bits 62: base64url '-'
	addr := key.String() + "@127.0.0.1:9"
	if !strings.HasPrefix(addr, "-") {
		t.Fatalf("test key %s does not start with '-'", key)
	}
	for _, args := range [][]string{{addr}, {"-timeout", "1s", addr}, {"-service=x", addr}, {"--", addr}} {
		c := newCommand("cat", "cat ADDR", "")
		c.String("service", "", "")
		c.Duration("timeout", 0, "")
		if err := c.parse(args, 1, io.Discard); err != nil || c.Arg(0) != addr {
			t.Errorf("parse %q: %v, ADDR %q", args, err, c.Arg(0))
		}
	}
	// And end to end: the error is about the dial, not a flag.
	_, errOut, code := runHaven(t, "", "cat", "-timeout", "200ms", addr)
	if code != exitError || !strings.Contains(errOut, "no answer within 200ms") {
		t.Errorf("cat %s: status %d, stderr %q", addr, code, errOut)
	}
}

// TestAddrsFlag: -local and -advertise take IP:PORT addresses, repeated
// or comma-separated, and refuse anything else.
func TestAddrsFlag(t *testing.T) {
	var f addrsFlag
	for _, v := range []string{"127.0.0.1:0", "127.0.0.2:0, [::1]:4433"} {
		if err := f.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if got := f.String(); got != "127.0.0.1:0,127.0.0.2:0,[::1]:4433" {
		t.Fatalf("addresses %q", got)
	}
	for _, bad := range []string{"", "localhost:1", "127.0.0.1", "1.2.3.4:99999"} {
		var g addrsFlag
		if err := g.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted: %v", bad, g)
		}
	}
}

// TestCatSeveralLocalAddrs: haven cat with two -local addresses (a path
// from each), with and without -backup-paths, round-trips through haven
// serve -advertise.
func TestCatSeveralLocalAddrs(t *testing.T) {
	_, addr := serveListening(t, "-echo", "-advertise", "127.0.0.1:9")
	for _, extra := range [][]string{nil, {"-backup-paths"}} {
		args := append(append([]string{"cat", "-local", "127.0.0.1:0", "-local", "127.0.0.2:0"}, extra...), addr)
		out, errOut, code := runHaven(t, "over two sockets\n", args...)
		if code != 0 || out != "over two sockets\n" {
			t.Fatalf("cat %v: status %d, stdout %q, stderr %q", extra, code, out, errOut)
		}
	}
}

// TestShow: haven serve -control answers haven show with the server's
// live sessions (the test dials one with a known key), over an owner-only
// unix socket; with a key prefix, the session's detail and paths.
func TestShow(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "haven.sock")
	p, addr := serveListening(t, "-echo", "-control", sock)
	p.waitLine(t, "control socket ", 10*time.Second)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, %v", fi.Mode(), err)
	}
	key, err := hnet.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	d := &hnet.Dialer{Config: hnet.Config{PrivateKey: key}}
	defer d.Close()
	c, err := d.Dial("haven4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runHaven(t, "", "show", "-control", sock)
	peer := key.PublicKey().String()
	if code != 0 || !strings.Contains(out, "peer "+peer) || !strings.Contains(out, "channels: 1 open") || !strings.Contains(out, "latest handshake: ") {
		t.Fatalf("show: status %d, stdout %q, stderr %q; want peer %s with its channel", code, out, errOut, peer)
	}
	// "--" ends the flags: a key's text may begin with '-' (one key in 64),
	// and the flag package would take such a prefix for a flag.
	out, _, code = runHaven(t, "", "show", "-control", sock, "--", peer[:8])
	if code != 0 || !strings.Contains(out, "peer "+peer) || !strings.Contains(out, "  path ") {
		t.Fatalf("show %s: status %d, stdout %q", peer[:8], code, out)
	}
	out, _, _ = runHaven(t, "", "show", "-control", sock, "zz-no-such-key")
	if strings.Contains(out, "peer ") {
		t.Fatalf("show with a prefix no key has listed %q", out)
	}
}
