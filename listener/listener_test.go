package listener

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// TestActivatedBothKinds: a datagram socket and a listening stream socket
// passed as systemd passes them (LISTEN_FDS from descriptor 3, named by
// LISTEN_FDNAMES) come back as a Conn and a Listener with their names.
// The check runs in a child process, whose LISTEN_PID it can know.
func TestActivatedBothKinds(t *testing.T) {
	if os.Getenv("HAVEN_ACTIVATED_CHILD") == "1" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
		socks, err := Activated()
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		if len(socks) != 2 || socks[0].Conn == nil || socks[0].Name != "haven" ||
			socks[1].Listener == nil || socks[1].Name != "haven" {
			fmt.Printf("sockets: %+v\n", socks)
			os.Exit(1)
		}
		fmt.Println("ok", socks[0].Conn.LocalAddr(), socks[1].Listener.Addr())
		os.Exit(0)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pf, err := pc.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestActivatedBothKinds$")
	cmd.Env = append(os.Environ(), "HAVEN_ACTIVATED_CHILD=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=haven:haven")
	cmd.ExtraFiles = []*os.File{pf, lf}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := fmt.Sprintf("ok %v %v", pc.LocalAddr(), ln.Addr())
	if got := string(out); len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("child said %q, want %q", got, want)
	}
}
