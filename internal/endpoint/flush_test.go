package endpoint

import (
	"net/netip"
	"testing"

	"github.com/havenproto/haven/internal/udp"
	"github.com/havenproto/haven/mux/congestion"
)

// batchRecorder is a Transport that records the messages written.
type batchRecorder struct {
	msgs []udp.Message
}

func (b *batchRecorder) WriteBatch(msgs []udp.Message) (int, error) {
	b.msgs = append(b.msgs, msgs...)
	return len(msgs), nil
}
func (b *batchRecorder) LocalAddr() netip.AddrPort { return netip.AddrPort{} }
func (b *batchRecorder) Caps() udp.Caps            { return udp.Caps{GSO: true} }
func (b *batchRecorder) Close() error              { return nil }

// TestFlushGSOStretches: packets back to back in an arena to one address
// go as one GSO message of their size (the last may be shorter), but a
// larger packet followed by smaller ones, a path MTU probe before the
// path's packets, goes alone: in one message the kernel refuses all of
// them when the probe is larger than the path carries (EMSGSIZE), and the
// packets after the probe were lost with it.
func TestFlushGSOStretches(t *testing.T) {
	to := netip.MustParseAddrPort("127.0.0.1:9")
	for _, tc := range []struct {
		name  string
		sizes []int
		want  [][2]int // per message: bytes, segment size (0: one datagram)
	}{
		{"equal", []int{1452, 1452, 1452}, [][2]int{{3 * 1452, 1452}}},
		{"shorter last", []int{1452, 1452, 800}, [][2]int{{2*1452 + 800, 1452}}},
		{"probe first", []int{8952, 1452, 1452}, [][2]int{{8952, 0}, {2 * 1452, 1452}}},
		{"probe after", []int{1452, 1452, 8952}, [][2]int{{2 * 1452, 1452}, {8952, 0}}},
		{"two of differing size", []int{1452, 800}, [][2]int{{1452, 0}, {800, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &batchRecorder{}
			l := &link{t: rec, caps: rec.Caps()}
			r := &run{}
			for _, n := range tc.sizes {
				b, arena := r.packetSpace(n)
				if b == nil {
					t.Fatal("no packet space")
				}
				r.aoff += n
				r.out = append(r.out, outPacket{buf: b, to: path{l: l, addr: to}, arena: arena})
			}
			defer r.recycle()
			var s Session
			s.flush(r.out, &r.ws)
			if len(rec.msgs) != len(tc.want) {
				t.Fatalf("%d messages, want %d", len(rec.msgs), len(tc.want))
			}
			for i, m := range rec.msgs {
				if len(m.Buf) != tc.want[i][0] || m.Segment != tc.want[i][1] {
					t.Errorf("message %d: %d bytes, segment %d; want %d, %d", i, len(m.Buf), m.Segment, tc.want[i][0], tc.want[i][1])
				}
			}
		})
	}
}

// TestRunFitsPacerBurst: a run's packets at the largest IPv4 size on a
// 1,500-byte MTU fit the pacer's rate burst and whole arenas. A burst short
// of a run ended every run on a pacer wait (5–7 % of bulk at MTU 1,500).
func TestRunFitsPacerBurst(t *testing.T) {
	const size = 1472 // a packet as sent, tag included (PROTOCOL.md §6.5)
	if producePackets*size > congestion.MaxRateBurst {
		t.Fatalf("a run of %d packets of %d bytes exceeds the pacer's burst of %d bytes", producePackets, size, congestion.MaxRateBurst)
	}
	perArena := arenaSize / size
	if producePackets%perArena != 0 || producePackets/perArena > maxRunArenas {
		t.Fatalf("a run of %d packets fills arenas of %d packets unevenly, or more than %d of them", producePackets, perArena, maxRunArenas)
	}
}
