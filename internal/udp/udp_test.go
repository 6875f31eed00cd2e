package udp

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			a, b := listen(t, f, Options{}), listen(t, f, Options{})
			p := []byte("hello, haven")
			mustWrite(t, a, []Message{{Buf: p, Addr: b.LocalAddr()}})
			expect(t, readDatagrams(t, b, 1), [][]byte{p}, a.LocalAddr())
			// and back, to the address the read reported
			q := []byte("hello back")
			mustWrite(t, b, []Message{{Buf: q, Addr: a.LocalAddr()}})
			expect(t, readDatagrams(t, a, 1), [][]byte{q}, b.LocalAddr())
		})
	}
}

// TestBatch64: 64 messages in one WriteBatch arrive intact, for each mode
// of the direct path.
func TestBatch64(t *testing.T) {
	modes := []struct {
		name string
		o    Options
	}{
		{"batch", Options{}},
		{"nobatch", Options{DisableBatch: true}},
		{"batch8", Options{BatchSize: 8}},
	}
	for _, f := range families {
		for _, mode := range modes {
			t.Run(f.name+"/"+mode.name, func(t *testing.T) {
				a, b := listen(t, f, mode.o), listen(t, f, mode.o)
				if want := mode.o.DisableBatch; directPath && a.Caps().Batch == want {
					t.Fatalf("Caps().Batch = %v with DisableBatch %v", !want, want)
				}
				msgs := make([]Message, 64)
				want := make([][]byte, 64)
				for i := range msgs {
					want[i] = payload(i, 1+i*20)
					msgs[i] = Message{Buf: want[i], Addr: b.LocalAddr()}
				}
				mustWrite(t, a, msgs)
				expect(t, readDatagrams(t, b, 64), want, a.LocalAddr())
			})
		}
	}
}

// TestDualStack: an IPv6 socket on [::] reports IPv4 peers unmapped and
// can answer them at that address.
func TestDualStack(t *testing.T) {
	d := listen(t, family{"v6", "udp", netip.AddrPortFrom(netip.IPv6Unspecified(), 0)}, Options{})
	a := listen(t, families[0], Options{})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), d.LocalAddr().Port())
	p := []byte("via v4")
	mustWrite(t, a, []Message{{Buf: p, Addr: to}})
	got := readDatagrams(t, d, 1)
	expect(t, got, [][]byte{p}, a.LocalAddr())
	if !got[0].from.Addr().Is4() {
		t.Errorf("source %v is not an unmapped IPv4 address", got[0].from)
	}
	mustWrite(t, d, []Message{{Buf: p, Addr: got[0].from}})
	expect(t, readDatagrams(t, a, 1), [][]byte{p}, to)
	// segmented, both ways (GSO where the kernel has it)
	m, parts := segmented(to, 1200, 5, 10)
	mustWrite(t, a, []Message{m})
	expect(t, readDatagrams(t, d, 5), parts, a.LocalAddr())
	m.Addr = got[0].from
	mustWrite(t, d, []Message{m})
	expect(t, readDatagrams(t, a, 5), parts, to)
}

func TestWriteErrors(t *testing.T) {
	a := listen(t, families[0], Options{})
	n, err := a.WriteBatch([]Message{{Buf: []byte("x"), Addr: netip.MustParseAddrPort("[::1]:9")}})
	var oe *net.OpError
	if n != 0 || !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("IPv6 destination on an IPv4 socket: n=%d err=%v, want 0 and a write *net.OpError", n, err)
	}
	if n, err := a.ReadBatch(nil); n != 0 || err != nil {
		t.Fatalf("ReadBatch(nil) = %d, %v", n, err)
	}
}

// pcWrapper hides the *net.UDPConn behind the interface, as a caller's
// own PacketConn would.
type pcWrapper struct{ net.PacketConn }

func TestFromPacketConn(t *testing.T) {
	newUDP := func(t *testing.T) *net.UDPConn {
		uc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4))
		if err != nil {
			t.Fatal(err)
		}
		return uc
	}
	fromFile := func(t *testing.T) net.PacketConn {
		// as systemd socket activation hands a socket over: by descriptor
		uc := newUDP(t)
		defer uc.Close()
		f, err := uc.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		pc, err := net.FilePacketConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return pc
	}
	cases := []struct {
		name   string
		pc     func(*testing.T) net.PacketConn
		direct bool
	}{
		{"UDPConn", func(t *testing.T) net.PacketConn { return newUDP(t) }, true},
		{"file", fromFile, true},
		{"wrapper", func(t *testing.T) net.PacketConn { return pcWrapper{newUDP(t)} }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pc := tc.pc(t)
			c, err := FromPacketConn(pc, Options{})
			if err != nil {
				pc.Close()
				t.Fatal(err)
			}
			defer c.Close()
			caps := c.Caps()
			t.Logf("caps %+v", caps)
			if caps.Batch != (tc.direct && directPath) {
				t.Fatalf("Caps().Batch = %v, want %v", caps.Batch, tc.direct && directPath)
			}
			peer := listen(t, families[0], Options{DisableGRO: true})
			if c.LocalAddr() != addrPortOf(pc.LocalAddr()) || !c.LocalAddr().Addr().Is4() {
				t.Fatalf("LocalAddr %v, socket %v", c.LocalAddr(), pc.LocalAddr())
			}
			// out: 8 plain messages and a segmented one
			msgs := make([]Message, 8)
			var want [][]byte
			for i := range msgs {
				msgs[i] = Message{Buf: payload(i, 100+i), Addr: peer.LocalAddr()}
				want = append(want, msgs[i].Buf)
			}
			sm, parts := segmented(peer.LocalAddr(), 500, 4, 123)
			msgs = append(msgs, sm)
			want = append(want, parts...)
			mustWrite(t, c, msgs)
			expect(t, readDatagrams(t, peer, len(want)), want, c.LocalAddr())
			// in
			for i := range msgs {
				msgs[i].Addr = c.LocalAddr()
			}
			mustWrite(t, peer, msgs[:8])
			expect(t, readDatagrams(t, c, 8), want[:8], peer.LocalAddr())
			// Close closes the socket underneath
			c.Close()
			if _, err := pc.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(peer.LocalAddr())); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("underlying socket after Close: %v", err)
			}
		})
	}
}

// TestClose: Close unblocks a blocked ReadBatch with net.ErrClosed, on the
// direct and the generic path; later calls fail the same way.
func TestClose(t *testing.T) {
	cases := []struct {
		name string
		open func(*testing.T) *Conn
	}{
		{"direct", func(t *testing.T) *Conn { return listen(t, families[0], Options{}) }},
		{"nobatch", func(t *testing.T) *Conn { return listen(t, families[0], Options{DisableBatch: true}) }},
		{"generic", func(t *testing.T) *Conn {
			uc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4))
			if err != nil {
				t.Fatal(err)
			}
			c, err := FromPacketConn(pcWrapper{uc}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.open(t)
			started := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				msgs := []Message{{Buf: make([]byte, 1500)}}
				close(started)
				_, err := c.ReadBatch(msgs)
				done <- err
			}()
			<-started
			time.Sleep(10 * time.Millisecond) // let it block; either order must work
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				var oe *net.OpError
				if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != "read" {
					t.Fatalf("ReadBatch after Close: %v, want a read *net.OpError wrapping net.ErrClosed", err)
				}
			case <-time.After(testTimeout):
				t.Fatal("ReadBatch still blocked after Close")
			}
			if _, err := c.ReadBatch([]Message{{Buf: make([]byte, 10)}}); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("ReadBatch on a closed Conn: %v", err)
			}
			if _, err := c.WriteBatch([]Message{{Buf: []byte("x"), Addr: netip.MustParseAddrPort("127.0.0.1:9")}}); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("WriteBatch on a closed Conn: %v", err)
			}
		})
	}
}

func TestReadDeadline(t *testing.T) {
	c := listen(t, families[0], Options{})
	if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReadBatch([]Message{{Buf: make([]byte, 10)}})
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadBatch past the deadline: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	const writers, per = 4, 50
	a, b := listen(t, families[0], Options{}), listen(t, families[0], Options{})
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			msgs := make([]Message, 5)
			for i := 0; i < per/len(msgs); i++ {
				for j := range msgs {
					msgs[j] = Message{Buf: payload(w, 200), Addr: b.LocalAddr()}
				}
				if _, err := a.WriteBatch(msgs); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := readDatagrams(t, b, writers*per)
	count := map[byte]int{}
	for _, d := range got {
		count[d.data[0]]++
	}
	for w := 0; w < writers; w++ {
		if count[payload(w, 1)[0]] != per {
			t.Errorf("writer %d: %d datagrams, want %d", w, count[payload(w, 1)[0]], per)
		}
	}
}

func TestSplitSegments(t *testing.T) {
	buf := []byte("aaabbbcc")
	var got []string
	collect := func(s []byte) {
		if cap(s) != len(s) {
			t.Errorf("segment capacity %d > length %d", cap(s), len(s))
		}
		got = append(got, string(s))
	}
	for _, tc := range []struct {
		n, seg int
		want   []string
	}{
		{8, 3, []string{"aaa", "bbb", "cc"}},
		{6, 3, []string{"aaa", "bbb"}},
		{8, 0, []string{"aaabbbcc"}},
		{3, 3, []string{"aaa"}},
		{0, 0, []string{""}},
	} {
		got = got[:0]
		SplitSegments(Message{Buf: buf, N: tc.n, Segment: tc.seg}, collect)
		if len(got) != len(tc.want) {
			t.Fatalf("N=%d Segment=%d: %q, want %q", tc.n, tc.seg, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("N=%d Segment=%d: %q, want %q", tc.n, tc.seg, got, tc.want)
			}
		}
	}
}

func TestOptions(t *testing.T) {
	c := listen(t, families[0], Options{ReadBuffer: 1 << 20, WriteBuffer: -1, BatchSize: 5000})
	caps := c.Caps()
	if directPath && caps.BatchSize != maxBatchSize {
		t.Errorf("BatchSize %d, want it capped at %d", caps.BatchSize, maxBatchSize)
	}
	if directPath && caps.ReadBuffer < 1<<20 && os.Geteuid() == 0 {
		t.Errorf("ReadBuffer %d after asking for 1 MiB as root", caps.ReadBuffer)
	}
	if _, err := Listen("tcp", lo4, Options{}); err == nil {
		t.Error("Listen(tcp) succeeded")
	}
}

// TestWriteAfterDeadline: a write deadline in the past fails WriteBatch
// with a timeout and nothing reported as written; clearing it recovers.
func TestWriteAfterDeadline(t *testing.T) {
	a, b := listen(t, families[0], Options{}), listen(t, families[0], Options{})
	msgs := []Message{{Buf: []byte("one"), Addr: b.LocalAddr()}, {Buf: []byte("two"), Addr: b.LocalAddr()}}
	mustWrite(t, a, msgs) // leaves results in the write scratch
	if err := a.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := a.WriteBatch(msgs); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteBatch past the deadline: n=%d err=%v", n, err)
	}
	if err := a.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, msgs)
	want := [][]byte{msgs[0].Buf, msgs[1].Buf, msgs[0].Buf, msgs[1].Buf}
	expect(t, readDatagrams(t, b, 4), want, a.LocalAddr())
}
