package udp

import (
	"os"
	"runtime"
	"testing"
)

// needGSO skips when the kernel lacks UDP GSO (the probe at Listen failed);
// needGRO likewise for UDP GRO. Linux has had both since 5.0, and CI runs
// on Linux: there a missing one means the probe broke, and the test fails
// instead of skipping.
func needGSO(t *testing.T, c *Conn) {
	if !c.Caps().GSO {
		needIn(t, "kernel lacks UDP GSO (UDP_SEGMENT): caps %+v", c.Caps())
	}
}

func needGRO(t *testing.T, c *Conn) {
	if !c.Caps().GRO {
		needIn(t, "kernel lacks UDP GRO (UDP_GRO): caps %+v", c.Caps())
	}
}

// needIn fails the test on Linux in CI and skips it elsewhere.
func needIn(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" && runtime.GOOS == "linux" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// TestGSO: one Message of 10 segments of 1,200 bytes (the last shorter)
// reaches a receiver without GRO as 10 datagrams, and a receiver with GRO
// as a train that SplitSegments cuts into the same 10.
func TestGSO(t *testing.T) {
	for _, f := range families {
		t.Run(f.name+"/noGRO", func(t *testing.T) {
			a, b := listen(t, f, Options{}), listen(t, f, Options{DisableGRO: true})
			needGSO(t, a)
			m, want := segmented(b.LocalAddr(), 1200, 10, 700)
			mustWrite(t, a, []Message{m})
			got := readDatagrams(t, b, 10)
			expect(t, got, want, a.LocalAddr())
			if !a.Caps().GSO {
				t.Error("GSO switched off by a send the kernel accepted")
			}
		})
		t.Run(f.name+"/GRO", func(t *testing.T) {
			a, b := listen(t, f, Options{}), listen(t, f, Options{})
			needGSO(t, a)
			needGRO(t, b)
			m, want := segmented(b.LocalAddr(), 1200, 10, 700)
			mustWrite(t, a, []Message{m})
			got := readDatagrams(t, b, 10)
			expect(t, got, want, a.LocalAddr())
			// Loopback does no GRO of its own: a train proves the send went
			// out as one GSO packet and was read as one.
			for i, d := range got {
				if !d.gro {
					t.Errorf("datagram %d did not arrive in a GRO train", i)
				}
			}
		})
	}
}

// TestGSOChunks: messages beyond the kernel's limits (more than 64
// segments, more than 65,507 bytes) go out in several GSO sends, and
// mixing plain and segmented messages keeps the order.
func TestGSOChunks(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			for _, o := range []Options{{}, {DisableGSO: true}, {BatchSize: 2}, {DisableBatch: true}} {
				a, b := listen(t, f, o), listen(t, f, Options{})
				big, want1 := segmented(b.LocalAddr(), 1400, 64, 1400) // 89,600 bytes
				many, want2 := segmented(b.LocalAddr(), 100, 150, 1)   // 150 segments
				plain := Message{Buf: payload(99, 3000), Addr: b.LocalAddr(), Segment: 3000}
				var want [][]byte
				want = append(append(append(want, want1...), plain.Buf), want2...)
				mustWrite(t, a, []Message{big, plain, many})
				expect(t, readDatagrams(t, b, len(want)), want, a.LocalAddr())
			}
		})
	}
}

// TestGSODisabled: with DisableGSO a segmented Message is split here and
// still arrives as its datagrams, none of them in a GRO train.
func TestGSODisabled(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			a, b := listen(t, f, Options{DisableGSO: true}), listen(t, f, Options{})
			if a.Caps().GSO {
				t.Fatal("Caps().GSO with DisableGSO")
			}
			m, want := segmented(b.LocalAddr(), 1200, 10, 700)
			mustWrite(t, a, []Message{m})
			got := readDatagrams(t, b, 10)
			expect(t, got, want, a.LocalAddr())
			for i, d := range got {
				if d.gro {
					t.Errorf("datagram %d arrived in a GRO train although GSO is off", i)
				}
			}
		})
	}
}
