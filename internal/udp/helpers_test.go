package udp

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// testTimeout bounds every blocking read in the tests: it is a safety net
// against a hang, never an assertion about speed.
const testTimeout = 10 * time.Second

var (
	lo4 = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
	lo6 = netip.AddrPortFrom(netip.IPv6Loopback(), 0)
)

type family struct {
	name, network string
	laddr         netip.AddrPort
}

// directPath: sockets from Listen take the system-call path (batching,
// offloads); elsewhere they take the generic net.PacketConn path.
const directPath = runtime.GOOS == "linux"

var families = []family{{"v4", "udp4", lo4}, {"v6", "udp6", lo6}}

// listen opens a loopback Conn, skipping the test only when the machine
// has no loopback address of that family, and closes it at the end.
func listen(t testing.TB, f family, o Options) *Conn {
	t.Helper()
	c, err := Listen(f.network, f.laddr, o)
	if err != nil {
		if f.name == "v6" {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatalf("Listen(%s, %v): %v", f.network, f.laddr, err)
	}
	t.Cleanup(func() { c.Close() })
	t.Logf("%s %v caps %+v", f.name, c.LocalAddr(), c.Caps())
	return c
}

// payload is datagram i of a test: a recognisable pattern of n bytes.
func payload(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*7 + j*13 + j>>8)
	}
	return b
}

type datagram struct {
	data []byte
	from netip.AddrPort
	gro  bool // arrived as part of a GRO train
}

// readDatagrams reads until want datagrams (after splitting GRO trains)
// have arrived, with a deadline and a bounded number of reads.
func readDatagrams(t testing.TB, c *Conn, want int) []datagram {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	msgs := make([]Message, 16)
	for i := range msgs {
		msgs[i].Buf = make([]byte, GROBufferSize)
	}
	var got []datagram
	for reads := 0; len(got) < want && reads < 10*want+10; reads++ {
		n, err := c.ReadBatch(msgs)
		if err != nil {
			t.Fatalf("ReadBatch after %d of %d datagrams: %v", len(got), want, err)
		}
		for _, m := range msgs[:n] {
			if m.Truncated {
				t.Errorf("read truncated (N=%d)", m.N)
			}
			SplitSegments(m, func(seg []byte) {
				got = append(got, datagram{bytes.Clone(seg), m.Addr, m.Segment > 0})
			})
		}
	}
	if len(got) != want {
		t.Fatalf("got %d datagrams, want %d", len(got), want)
	}
	return got
}

// expect checks received datagrams against the sent payloads, in order
// (one sender, one receiver, loopback: the kernel keeps the order).
func expect(t testing.TB, got []datagram, want [][]byte, from netip.AddrPort) {
	t.Helper()
	for i := range want {
		if !bytes.Equal(got[i].data, want[i]) {
			t.Errorf("datagram %d: got %d bytes %s, want %d bytes %s", i,
				len(got[i].data), head(got[i].data), len(want[i]), head(want[i]))
		}
		if got[i].from != from {
			t.Errorf("datagram %d from %v, want %v", i, got[i].from, from)
		}
	}
}

func head(b []byte) string { return fmt.Sprintf("%x", b[:min(len(b), 8)]) }

// segmented builds one Message of count datagrams of size seg (the last
// one lastLen bytes) and returns it with the datagrams it should become.
func segmented(to netip.AddrPort, seg, count, lastLen int) (Message, [][]byte) {
	var buf []byte
	var parts [][]byte
	for i := 0; i < count; i++ {
		n := seg
		if i == count-1 {
			n = lastLen
		}
		p := payload(i, n)
		parts = append(parts, p)
		buf = append(buf, p...)
	}
	return Message{Buf: buf, Addr: to, Segment: seg}, parts
}

func mustWrite(t testing.TB, c *Conn, msgs []Message) {
	t.Helper()
	if n, err := c.WriteBatch(msgs); err != nil || n != len(msgs) {
		t.Fatalf("WriteBatch: %d of %d written, %v", n, len(msgs), err)
	}
}
