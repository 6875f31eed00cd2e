package buf

import (
	"math"
	"testing"
	"time"
)

const benchChunk = 1400

// BenchmarkSendBuffer: Write, AppendNew into a packet buffer, Ack, one
// 1,400-byte chunk per iteration, with a window of chunks in flight.
func BenchmarkSendBuffer(b *testing.B) {
	sb := NewSendBuffer(1<<20, 0)
	chunk := patBytes(0, benchChunk)
	pkt := make([]byte, 0, 2048)
	var ackAt uint64
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	for b.Loop() {
		if sb.Write(chunk) != benchChunk {
			b.Fatal("buffer full")
		}
		pkt, _, _, _ = sb.AppendNew(pkt[:0], benchChunk, math.MaxUint64)
		if sb.SentMax()-ackAt >= 64*benchChunk {
			sb.Ack(ackAt, benchChunk, false)
			ackAt += benchChunk
		}
	}
}

// BenchmarkRecvBuffer: Insert and Read of 1,400-byte chunks, every other
// pair out of order.
func BenchmarkRecvBuffer(b *testing.B) {
	rb := NewRecvBuffer(1<<20, 0)
	chunk := patBytes(0, benchChunk)
	p := make([]byte, benchChunk)
	var off uint64
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var err error
		if i&1 == 0 {
			err = rb.Insert(off+benchChunk, chunk, false)
		} else {
			err = rb.Insert(off-benchChunk, chunk, false)
			rb.Read(p)
			if n, _ := rb.Read(p); n != benchChunk {
				b.Fatalf("read %d", n)
			}
		}
		if err != nil {
			b.Fatal(err)
		}
		off += benchChunk
		i++
		rb.ShouldUpdateWindow()
	}
}

// BenchmarkReassembler: a 4,200-byte datagram in three fragments.
func BenchmarkReassembler(b *testing.B) {
	r := NewReassembler(1<<20, 16, time.Second)
	d := patBytes(0, 3*benchChunk)
	fr := fragments(d, benchChunk)
	var seq uint32
	b.SetBytes(int64(len(d)))
	b.ReportAllocs()
	for b.Loop() {
		seq++
		for _, f := range fr {
			r.Add(seq, uint32(len(d)), f.off, f.data, t0)
		}
	}
}

// BenchmarkRangeSetAck: recording received packet numbers with a gap
// every 16 packets and forgetting old ranges.
func BenchmarkRangeSetAck(b *testing.B) {
	s := NewRangeSet(32)
	var pn uint64
	b.ReportAllocs()
	for b.Loop() {
		if pn%16 != 5 {
			if !s.Add(pn, pn+1) {
				start, _ := s.At(1)
				s.RemoveBelow(start)
				s.Add(pn, pn+1)
			}
		}
		pn++
	}
}
