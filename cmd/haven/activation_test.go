package main

import (
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havenproto/haven/mux"
	hnet "github.com/havenproto/haven/net"
)

// socketActivate returns the path of systemd-socket-activate. It is
// installed wherever CI runs; elsewhere these tests skip, saying why.
func socketActivate(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs systemd-socket-activate (package systemd): %v", err)
		}
		t.Skipf("systemd-socket-activate is not installed (package systemd): %v", err)
	}
	return path
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// notifySocket listens where sd_notify writes (NOTIFY_SOCKET) and returns
// its path and the messages, one line each.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "hvn") // short: a socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, l := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
				select {
				case msgs <- l:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); os.RemoveAll(dir) })
	return path, msgs
}

// waitNotify waits for the sd_notify message want.
func waitNotify(t *testing.T, msgs <-chan string, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case m := <-msgs:
			if m == want {
				return
			}
			seen = append(seen, m)
		case <-deadline:
			t.Fatalf("no %s on the notify socket within %v (saw %q)", want, timeout, seen)
		}
	}
}

// activated runs "haven serve args..." under systemd-socket-activate on a
// datagram socket 127.0.0.1:port, with env passed on (-E), and waits until
// the socket is bound. Like systemd, it starts haven on the first datagram.
func activated(t *testing.T, port int, env []string, args ...string) *proc {
	t.Helper()
	sa := socketActivate(t)
	argv := []string{"--datagram", "-l", "127.0.0.1:" + strconv.Itoa(port), "--fdname=haven"}
	for _, e := range env {
		argv = append(argv, "-E", e)
	}
	argv = append(argv, havenBin, "serve")
	p := start(t, nil, nil, nil, sa, append(argv, args...)...)
	p.waitLine(t, "Listening on ", 10*time.Second)
	return p
}

// poke sends one foreign datagram to the port: it makes
// systemd-socket-activate start the server, which drops it.
func poke(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("wake up")); err != nil {
		t.Fatal(err)
	}
}

// TestActivatedCat: haven serve under systemd-socket-activate logs its
// address, reports READY=1, and haven cat round-trips a message and a
// 20 MB file through it byte for byte.
func TestActivatedCat(t *testing.T) {
	key, pub := writeKey(t, 0o600)
	notify, msgs := notifySocket(t)
	port := freeUDPPort(t)
	srv := activated(t, port, []string{"NOTIFY_SOCKET=" + notify}, "-key", key, "-echo")
	poke(t, port)
	addr := pub.String() + "@127.0.0.1:" + strconv.Itoa(port)
	if line := srv.waitLine(t, "listening on ", 10*time.Second); line != "listening on "+addr {
		t.Fatalf("logged %q, want %q", line, "listening on "+addr)
	}
	waitNotify(t, msgs, "READY=1", 10*time.Second)

	out, errOut, code := runHaven(t, "hello through haven\n", "cat", addr)
	if code != 0 || out != "hello through haven\n" {
		t.Fatalf("cat: status %d, stdout %q, stderr %q", code, out, errOut)
	}

	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	const size = 20 << 20
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	outPath := filepath.Join(dir, "out")
	of, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	cat := start(t, f, of, nil, havenBin, "cat", addr)
	if code := cat.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("cat of 20 MB: status %d, stderr %s", code, cat.stderr())
	}
	got, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) || len(got) != size {
		t.Fatalf("cat of 20 MB: %d bytes came back, different from the %d sent", len(got), size)
	}
	srv.stop(t)
}

// TestSigtermRestart: on SIGTERM the server reports STOPPING=1 and closes
// its sessions with CloseRestarting; started again on the same port with
// the same key, it is reached by the same Dialer's next Dial (a new
// handshake, made transparently).
func TestSigtermRestart(t *testing.T) {
	key, pub := writeKey(t, 0o600)
	notify, msgs := notifySocket(t)
	port := freeUDPPort(t)
	addr := pub.String() + "@127.0.0.1:" + strconv.Itoa(port)
	env := []string{"NOTIFY_SOCKET=" + notify, "WATCHDOG_USEC=200000"}
	srv := activated(t, port, env, "-key", key, "-echo")

	d := &hnet.Dialer{Timeout: 10 * time.Second}
	defer d.Close()
	c, err := d.Dial("haven4", addr) // its handshake starts the server
	if err != nil {
		t.Fatalf("dial: %v; server stderr:\n%s", err, srv.stderr())
	}
	defer c.Close()
	srv.waitLine(t, "listening on "+addr, 10*time.Second)
	waitNotify(t, msgs, "READY=1", 10*time.Second)
	waitNotify(t, msgs, "WATCHDOG=1", 10*time.Second)
	echo(t, c, "before the restart")

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitNotify(t, msgs, "STOPPING=1", 10*time.Second)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ce *mux.CloseError
	if !errors.As(err, &ce) || ce.Code != hnet.CloseRestarting || !ce.Remote {
		t.Fatalf("the client saw %v, want a CloseError with CloseRestarting from the peer", err)
	}
	if code := srv.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM; stderr:\n%s", code, srv.stderr())
	}
	if !strings.Contains(srv.stderr(), "received terminated") {
		t.Errorf("no shutdown log line; stderr:\n%s", srv.stderr())
	}

	// The service manager holds the port again; the next Dial's handshake
	// starts the new server, which answers it.
	srv2 := activated(t, port, env, "-key", key, "-echo")
	c2, err := d.Dial("haven4", addr)
	if err != nil {
		t.Fatalf("dial after the restart: %v; server stderr:\n%s", err, srv2.stderr())
	}
	defer c2.Close()
	echo(t, c2, "after the restart")
	srv2.waitLine(t, "listening on "+addr, 10*time.Second)
	waitNotify(t, msgs, "READY=1", 10*time.Second)
	srv2.stop(t)
}

// echo writes msg on c and expects it back.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo: got %q, %v; want %q", buf, err, msg)
	}
}
