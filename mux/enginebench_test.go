package mux

import (
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// BenchmarkEngineBulk measures the engine's own work per byte of a bulk
// stream at 1,472-byte packets (IPv4 at MTU 1,500), without cryptography,
// sockets or goroutines: the sender's Write and PollPath, the receiver's
// Receive, Read and its ACKs, in one loop on a clock that advances by
// each packet's time at 10 Gbit/s. What the endpoint adds (AEAD, system
// calls, hand-offs) is measured by the benchmarks module; this isolates
// the engine's share (issue #12).
func BenchmarkEngineBulk(b *testing.B) {
	cfg := Config{MaxPacketSize: ethernetMTU}
	now := time.Now() // with a monotonic reading, as the endpoint's clock has
	a, r := pair(b, cfg, cfg, now)
	id, err := a.OpenStream("bulk", 0)
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 64 << 10
	src := make([]byte, chunk)
	dst := make([]byte, chunk)
	pkt := make([]byte, wire.MaxPacketSize)
	var in uint32
	accepted := false
	deliver := func(from, to *Session) int {
		k := 0
		for {
			n := from.Poll(pkt, now)
			if n == 0 {
				return k
			}
			// The tag the AEAD would append is left off: Receive is
			// given the plaintext, as the endpoint gives it after opening.
			if err := to.Receive(pkt[:n], now); err != nil {
				b.Fatal(err)
			}
			now = now.Add(time.Duration(n+wire.TagLen) * 8 * time.Second / 10e9)
			k++
		}
	}
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for off := 0; off < chunk; {
			w, err := a.Write(id, src[off:])
			if err != nil {
				b.Fatal(err)
			}
			off += w
			sent := deliver(a, r)
			if !accepted {
				for {
					ev, ok := r.PollEvent()
					if !ok {
						break
					}
					if ev.Kind&EventIncoming != 0 {
						in = ev.Channel
						if err := r.Accept(in); err != nil {
							b.Fatal(err)
						}
						accepted = true
					}
				}
			}
			for accepted {
				n, err := r.Read(in, dst)
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
			acks := deliver(r, a)
			if w == 0 && sent == 0 && acks == 0 {
				// Nothing moved: the pacer or a timer holds the sender.
				if d := a.Deadline(); d.After(now) {
					now = d
				} else {
					now = now.Add(time.Millisecond)
				}
			}
		}
	}
}
