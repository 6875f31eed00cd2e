package buf

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// edge returns a random value biased towards the edges of uint64.
func edge(rng *rand.Rand, near uint64) uint64 {
	switch rng.IntN(6) {
	case 0:
		return math.MaxUint64 - rng.Uint64N(4)
	case 1:
		return rng.Uint64()
	case 2:
		return rng.Uint64N(4)
	default:
		return near + rng.Uint64N(5000) - 2500
	}
}

func edgeInt(rng *rand.Rand) int {
	switch rng.IntN(5) {
	case 0:
		return -rng.IntN(10)
	case 1:
		return math.MaxInt - rng.IntN(3)
	default:
		return rng.IntN(5000)
	}
}

// TestHostileCalls drives every structure with random, often nonsensical
// arguments: nothing may panic and every bound must hold.
func TestHostileCalls(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 43))
	junk := patBytes(0, 70000)
	for round := 0; round < 100; round++ {
		sb := NewSendBuffer(1+rng.IntN(20000), rng.IntN(8)-2)
		rb := NewRecvBuffer(rng.IntN(20000)-10, rng.IntN(8)-2)
		ra := NewReassembler(rng.IntN(200000), rng.IntN(6)-1, time.Duration(rng.IntN(3))*time.Second)
		now := t0
		for step := 0; step < 500; step++ {
			off := edge(rng, sb.SentMax())
			n := edgeInt(rng)
			fin := rng.IntN(4) == 0
			switch rng.IntN(12) {
			case 0:
				sb.Write(junk[:rng.IntN(len(junk))])
			case 1:
				sb.AppendNew(nil, n, edge(rng, sb.SentMax()))
			case 2:
				sb.AppendLost(nil, n)
			case 3:
				sb.Ack(off, n, fin)
			case 4:
				sb.MarkLost(off, n, fin)
			case 5:
				switch rng.IntN(20) {
				case 0:
					sb.Reset()
				case 1:
					sb.Close()
				case 2:
					sb.Release()
				}
			case 6:
				o := edge(rng, rb.Contiguous())
				rb.Insert(o, junk[:rng.IntN(3000)], fin)
			case 7:
				rb.Read(junk[60000 : 60000+rng.IntN(5000)])
				rb.ShouldUpdateWindow()
			case 8:
				switch rng.IntN(10) {
				case 0:
					rb.SetWindow(edgeInt(rng))
				case 1:
					rb.AnnounceLimit()
				case 2:
					rb.Reset(edge(rng, rb.HighestReceived()))
				case 3:
					rb.Close()
				}
			case 9, 10:
				total := uint32(rng.IntN(70000))
				fo := uint32(rng.IntN(int(total) + 2))
				d := junk[:rng.IntN(3000)]
				ra.Add(uint32(rng.IntN(8)), total, fo, d, now)
			default:
				now = now.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
				ra.Expire(now)
				ra.NextDeadline()
			}
			if sb.Buffered() > sb.Capacity() || len(sb.ring.b) > sb.Capacity() ||
				sb.lost.Len() > sb.lost.MaxRanges() || sb.ackRs.Len() > sb.ackRs.MaxRanges() {
				t.Fatalf("send buffer out of bounds")
			}
			if len(rb.ring.b) > rb.Window() || rb.Limit()-rb.ReadOffset() > uint64(rb.Window()) {
				t.Fatalf("receive buffer out of bounds: ring %d window %d", len(rb.ring.b), rb.Window())
			}
			if ra.HeldBytes() > ra.maxBytes || ra.Pending() > cap(ra.pending) {
				t.Fatalf("reassembler out of bounds")
			}
		}
	}
}
