package udp

import (
	"testing"
	"time"
)

// BenchmarkLoopback measures datagrams per second through loopback for
// 1,400-byte datagrams: one op is one datagram written by one Conn and
// read by another. Each round sends 64 datagrams and reads them all before
// the next, so nothing is lost and the loop is bounded; the figures are
// for comparing modes on one machine, not absolute.
//
//   - single: one recvmsg/sendmsg per datagram, no offloads
//   - batch: recvmmsg/sendmmsg, no offloads
//   - batch+gso: the 64 datagrams as one segmented Message (GSO), read
//     without GRO
//   - batch+gso+gro: the same, read with GRO
func BenchmarkLoopback(b *testing.B) {
	const size, round = 1400, 64
	modes := []struct {
		name   string
		o      Options
		gso    bool
		needGS bool
	}{
		{"single", Options{DisableBatch: true, DisableGSO: true, DisableGRO: true}, false, false},
		{"batch", Options{DisableGSO: true, DisableGRO: true}, false, false},
		{"batch+gso", Options{DisableGRO: true}, true, false},
		{"batch+gso+gro", Options{}, true, true},
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			a, r := listen(b, families[0], mode.o), listen(b, families[0], mode.o)
			if mode.gso && !a.Caps().GSO {
				b.Skipf("kernel lacks UDP GSO: caps %+v", a.Caps())
			}
			if mode.needGS && !r.Caps().GRO {
				b.Skipf("kernel lacks UDP GRO: caps %+v", r.Caps())
			}
			var out []Message
			if mode.gso {
				m, _ := segmented(r.LocalAddr(), size, round, size)
				out = []Message{m}
			} else {
				for i := 0; i < round; i++ {
					out = append(out, Message{Buf: payload(i, size), Addr: r.LocalAddr()})
				}
			}
			in := make([]Message, round)
			for i := range in {
				in[i].Buf = make([]byte, GROBufferSize)
			}
			if err := r.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
				b.Fatal(err)
			}
			last := make([]Message, len(out)) // the final, shorter round
			var got int
			countSeg := func([]byte) { got++ }
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for done := 0; done < b.N; done += round {
				k, batch := min(round, b.N-done), out
				if k < round {
					copy(last, out)
					if mode.gso {
						last[0].Buf = last[0].Buf[:k*size]
						batch = last
					} else {
						batch = last[:k]
					}
				}
				if _, err := a.WriteBatch(batch); err != nil {
					b.Fatal(err)
				}
				got = 0
				for reads := 0; got < k && reads < 10*round; reads++ {
					n, err := r.ReadBatch(in)
					if err != nil {
						b.Fatal(err)
					}
					for _, m := range in[:n] {
						SplitSegments(m, countSeg)
					}
				}
				if got != k {
					b.Fatalf("round: %d datagrams, want %d", got, k)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pkt/s")
		})
	}
}
