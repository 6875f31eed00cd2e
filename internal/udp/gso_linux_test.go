//go:build linux

package udp

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGSORejected forces the kernel to refuse GSO sends: a socket with
// zero UDP checksums (SO_NO_CHECK) may not use GSO, and udp_send_skb
// answers EINVAL. WriteBatch must switch GSO off for the socket and send
// the datagrams separately, including after plain messages already sent
// in the same batch.
func TestGSORejected(t *testing.T) {
	f := families[0]
	a, b := listen(t, f, Options{}), listen(t, f, Options{})
	needGSO(t, a)
	if err := setInt(a.sys.rc, unix.SOL_SOCKET, unix.SO_NO_CHECK, 1); err != nil {
		t.Skipf("cannot set SO_NO_CHECK to provoke a GSO rejection: %v", err)
	}
	first := Message{Buf: payload(1, 300), Addr: b.LocalAddr()}
	m, parts := segmented(b.LocalAddr(), 1200, 10, 700)
	last := Message{Buf: payload(2, 400), Addr: b.LocalAddr()}
	want := append(append([][]byte{first.Buf}, parts...), last.Buf)
	mustWrite(t, a, []Message{first, m, last})
	got := readDatagrams(t, b, len(want))
	expect(t, got, want, a.LocalAddr())
	if a.Caps().GSO {
		t.Fatal("GSO still on after the kernel rejected a GSO send")
	}
	for i, d := range got {
		if d.gro {
			t.Errorf("datagram %d arrived in a GRO train after the fallback", i)
		}
	}
	// and later segmented messages go straight to the split path
	mustWrite(t, a, []Message{m})
	expect(t, readDatagrams(t, b, 10), parts, a.LocalAddr())
}

// TestGSOBadMessage: a segmented message the kernel refuses for a reason
// of its own (EINVAL for destination port 0) is reported, and does not
// switch GSO off for the socket.
func TestGSOBadMessage(t *testing.T) {
	a := listen(t, families[0], Options{})
	needGSO(t, a)
	m, _ := segmented(lo4, 1200, 10, 700) // port 0
	if n, err := a.WriteBatch([]Message{m}); n != 0 || err == nil {
		t.Fatalf("WriteBatch to port 0: n=%d err=%v, want an error", n, err)
	} else {
		t.Logf("WriteBatch to port 0: %v", err)
	}
	if !a.Caps().GSO {
		t.Fatal("GSO switched off by a message the kernel refuses anyway")
	}
}

// TestBufferNeverLowered: wrapping a socket whose receive buffer is
// already larger than the default (as systemd's ReceiveBuffer= may set it)
// leaves it as it was.
func TestBufferNeverLowered(t *testing.T) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := pc.SyscallConn()
	big := 4 * DefaultBufferSize
	if err := setInt(rc, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, big); err != nil {
		pc.Close()
		t.Skipf("cannot force a large buffer here (needs CAP_NET_ADMIN): %v", err)
	}
	var before int
	rc.Control(func(fd uintptr) { before, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	c, err := FromPacketConn(pc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Caps().ReadBuffer; got != before {
		t.Fatalf("receive buffer %d after wrapping, was %d", got, before)
	}
}
