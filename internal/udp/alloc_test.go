package udp

import (
	"testing"
	"time"
)

// TestAllocs: a steady-state WriteBatch of 32 datagrams and the
// ReadBatch calls that take them in allocate nothing, on each mode of the
// direct path, once the caller's []Message is reused.
func TestAllocs(t *testing.T) {
	if !directPath {
		t.Skip("the generic net.PacketConn path allocates; the direct path is Linux only")
	}
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	const count = 32
	modes := []struct {
		name    string
		o       Options
		segment int // > 0: the 32 datagrams go as one segmented Message
	}{
		{"batch", Options{DisableGSO: true, DisableGRO: true}, 0},
		{"nobatch", Options{DisableBatch: true, DisableGSO: true, DisableGRO: true}, 0},
		{"gso-gro", Options{}, 1000},
		{"split", Options{DisableGSO: true, DisableGRO: true}, 1000},
	}
	for _, f := range families {
		for _, mode := range modes {
			t.Run(f.name+"/"+mode.name, func(t *testing.T) {
				a, b := listen(t, f, mode.o), listen(t, f, mode.o)
				var out []Message
				if mode.segment > 0 {
					m, _ := segmented(b.LocalAddr(), mode.segment, count, mode.segment)
					out = []Message{m}
				} else {
					for i := 0; i < count; i++ {
						out = append(out, Message{Buf: payload(i, 1000), Addr: b.LocalAddr()})
					}
				}
				in := make([]Message, count)
				for i := range in {
					in[i].Buf = make([]byte, GROBufferSize)
				}
				if err := b.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
					t.Fatal(err)
				}
				var segs int
				countSeg := func([]byte) { segs++ }
				allocs := testing.AllocsPerRun(200, func() {
					if _, err := a.WriteBatch(out); err != nil {
						t.Fatal(err)
					}
					segs = 0
					for reads := 0; segs < count && reads < 10*count; reads++ {
						n, err := b.ReadBatch(in)
						if err != nil {
							t.Fatal(err)
						}
						for _, m := range in[:n] {
							SplitSegments(m, countSeg)
						}
					}
					if segs != count {
						t.Fatalf("read %d datagrams, want %d", segs, count)
					}
				})
				if allocs != 0 {
					t.Fatalf("WriteBatch+ReadBatch of %d datagrams: %v allocations per run, want 0", count, allocs)
				}
			})
		}
	}
}
