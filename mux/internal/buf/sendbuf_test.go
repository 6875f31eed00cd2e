package buf

import (
	"bytes"
	"math"
	"testing"
)

// pat is the stream byte at offset o in tests: offset-dependent, so any
// misplaced byte shows.
func pat(o uint64) byte { return byte(o*7 + o>>8 + o>>16) }

func patBytes(off uint64, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = pat(off + uint64(i))
	}
	return p
}

func checkPat(t *testing.T, what string, off uint64, p []byte) {
	t.Helper()
	if want := patBytes(off, len(p)); !bytes.Equal(p, want) {
		t.Fatalf("%s: data at offset %d (len %d) differs from the stream", what, off, len(p))
	}
}

// sent is one STREAM message as the engine would record it.
type sent struct {
	off uint64
	n   int
	fin bool
}

func takeNew(t *testing.T, b *SendBuffer, max int, limit uint64) sent {
	t.Helper()
	pkt := make([]byte, 8, 8+maxInt(max, 0))
	pkt, off, n, fin := b.AppendNew(pkt, max, limit)
	if len(pkt) != 8+n {
		t.Fatalf("AppendNew appended %d bytes, reported %d", len(pkt)-8, n)
	}
	checkPat(t, "AppendNew", off, pkt[8:])
	return sent{off, n, fin}
}

func maxInt(a, b int) int { return max(a, b) }

func takeLost(t *testing.T, b *SendBuffer, max int) sent {
	t.Helper()
	pkt, off, n, fin := b.AppendLost(nil, max)
	if len(pkt) != n {
		t.Fatalf("AppendLost appended %d bytes, reported %d", len(pkt), n)
	}
	checkPat(t, "AppendLost", off, pkt)
	return sent{off, n, fin}
}

func TestSendBufferWrapAround(t *testing.T) {
	const capacity = 10000 // not a power of two: the ring grows 4K, 8K, 10000
	b := NewSendBuffer(capacity, 0)
	var w uint64
	var inflight []sent
	for round := 0; round < 300; round++ {
		n := b.Write(patBytes(w, 3333))
		w += uint64(n)
		if b.Buffered() > capacity || b.Free() != capacity-b.Buffered() {
			t.Fatalf("Buffered %d Free %d", b.Buffered(), b.Free())
		}
		for {
			s := takeNew(t, b, 1400, math.MaxUint64)
			if s.n == 0 {
				break
			}
			inflight = append(inflight, s)
		}
		if b.SentMax() != w || b.Unsent() != 0 {
			t.Fatalf("SentMax %d, written %d", b.SentMax(), w)
		}
		// Keep up to 6 messages in flight; acknowledge the second oldest
		// before the oldest, so the prefix moves only on the second ack.
		for len(inflight) > 6 {
			b.Ack(inflight[1].off, inflight[1].n, false)
			if b.Acked() != inflight[0].off {
				t.Fatalf("Acked %d moved past a gap at %d", b.Acked(), inflight[0].off)
			}
			b.Ack(inflight[0].off, inflight[0].n, false)
			if b.Acked() != inflight[1].off+uint64(inflight[1].n) {
				t.Fatalf("Acked %d", b.Acked())
			}
			inflight = inflight[2:]
		}
	}
	if len(b.ring.b) != capacity {
		t.Errorf("ring size %d, want %d", len(b.ring.b), capacity)
	}
	for _, s := range inflight {
		b.Ack(s.off, s.n, false)
	}
	if b.Acked() != w || b.Buffered() != 0 {
		t.Fatalf("Acked %d, want %d", b.Acked(), w)
	}
}

func TestSendBufferCapacityFreesOnContiguousAck(t *testing.T) {
	b := NewSendBuffer(3000, 0)
	if n := b.Write(patBytes(0, 5000)); n != 3000 {
		t.Fatalf("Write took %d, want 3000", n)
	}
	if b.Free() != 0 || b.Write([]byte{1}) != 0 {
		t.Fatal("full buffer accepted data")
	}
	m1, m2, m3 := takeNew(t, b, 1000, 1<<20), takeNew(t, b, 1000, 1<<20), takeNew(t, b, 1000, 1<<20)
	b.Ack(m3.off, m3.n, false)
	b.Ack(m2.off, m2.n, false)
	if b.Free() != 0 || b.Acked() != 0 {
		t.Fatalf("out-of-order ack freed space: Free %d Acked %d", b.Free(), b.Acked())
	}
	b.Ack(m1.off, 500, false)
	if b.Free() != 500 || b.Acked() != 500 {
		t.Fatalf("Free %d Acked %d, want 500", b.Free(), b.Acked())
	}
	b.Ack(m1.off, m1.n, false)
	if b.Free() != 3000 || b.Acked() != 3000 || b.ackRs.Len() != 0 {
		t.Fatalf("Free %d Acked %d ranges %d", b.Free(), b.Acked(), b.ackRs.Len())
	}
	if n := b.Write(patBytes(3000, 3000)); n != 3000 {
		t.Fatalf("Write after ack took %d", n)
	}
}

func TestSendBufferLossRetransmitsFirst(t *testing.T) {
	b := NewSendBuffer(1<<16, 0)
	b.Write(patBytes(0, 10000))
	var m []sent
	for i := 0; i < 4; i++ {
		m = append(m, takeNew(t, b, 1000, 1<<20))
	}
	b.MarkLost(m[2].off, m[2].n, false)
	b.MarkLost(m[1].off, m[1].n, false)
	if !b.HasLost() || !b.Sendable(0) {
		t.Fatal("HasLost false after MarkLost")
	}
	// Lowest first, split by max.
	for _, c := range []struct {
		max  int
		want sent
	}{{600, sent{1000, 600, false}}, {1000, sent{1600, 1000, false}}, {1000, sent{2600, 400, false}}} {
		if got := takeLost(t, b, c.max); got != c.want {
			t.Fatalf("retransmission %v, want %v", got, c.want)
		}
	}
	if b.HasLost() {
		t.Fatal("still lost after retransmitting")
	}
	if s := takeLost(t, b, 1000); s.n != 0 || s.fin {
		t.Fatalf("AppendLost with nothing lost = %v", s)
	}
	// New data continues where it stopped, and SentMax did not move for
	// retransmissions.
	if b.SentMax() != 4000 {
		t.Fatalf("SentMax %d", b.SentMax())
	}
	if s := takeNew(t, b, 1000, 1<<20); s.off != 4000 {
		t.Fatalf("new data at %d", s.off)
	}
	// Bytes acknowledged meanwhile are skipped; bytes never sent or below
	// the acked prefix are ignored.
	b.MarkLost(0, 3000, false)
	b.MarkLost(9000, 500, false)
	b.Ack(1000, 1000, false)
	b.Ack(0, 200, false)
	for _, want := range []sent{{200, 800, false}, {2000, 1000, false}} {
		if got := takeLost(t, b, 5000); got != want {
			t.Fatalf("retransmission %v, want %v", got, want)
		}
	}
	if b.HasLost() {
		t.Fatal("unexpected lost data")
	}
	// A loss reported after the bytes were acknowledged changes nothing.
	b.MarkLost(1000, 1000, false)
	if b.HasLost() {
		t.Fatal("acknowledged bytes queued for retransmission")
	}
}

func TestSendBufferLimit(t *testing.T) {
	b := NewSendBuffer(1<<16, 0)
	b.Write(patBytes(0, 5000))
	total := 0
	for {
		s := takeNew(t, b, 1400, 3000)
		if s.n == 0 {
			break
		}
		total += s.n
	}
	if total != 3000 || b.SentMax() != 3000 {
		t.Fatalf("sent %d under limit 3000", total)
	}
	if !b.Blocked(3000) || b.Sendable(3000) || b.Blocked(4000) || !b.Sendable(4000) {
		t.Fatal("Blocked/Sendable wrong")
	}
	// Retransmissions do not count against the limit.
	b.MarkLost(0, 1400, false)
	if s := takeLost(t, b, 1400); s.n != 1400 {
		t.Fatalf("retransmission %v", s)
	}
	if s := takeNew(t, b, 1400, 2000); s.n != 0 { // a lower limit is no limit at all
		t.Fatalf("sent %v beyond limit", s)
	}
	if s := takeNew(t, b, 5000, 4500); s.n != 1500 || s.off != 3000 {
		t.Fatalf("after raising the limit: %v", s)
	}
	if s := takeNew(t, b, -5, 1<<20); s.n != 0 {
		t.Fatalf("negative max sent %v", s)
	}
}

func TestSendBufferFin(t *testing.T) {
	t.Run("with data", func(t *testing.T) {
		b := NewSendBuffer(4096, 0)
		b.Write(patBytes(0, 100))
		b.Close()
		if b.Write([]byte{1}) != 0 || b.Free() != 0 {
			t.Fatal("Write after Close accepted data")
		}
		if size, ok := b.FinalSize(); size != 100 || !ok {
			t.Fatalf("FinalSize %d %v", size, ok)
		}
		if s := takeNew(t, b, 60, 1000); s != (sent{0, 60, false}) {
			t.Fatalf("first %v", s)
		}
		last := takeNew(t, b, 60, 1000)
		if last != (sent{60, 40, true}) {
			t.Fatalf("last %v", last)
		}
		if s := takeNew(t, b, 60, 1000); s.n != 0 || s.fin || b.Sendable(1000) {
			t.Fatalf("FIN sent twice: %v", s)
		}
		// The last message is lost: data and FIN come back together.
		b.MarkLost(last.off, last.n, last.fin)
		if s := takeLost(t, b, 30); s != (sent{60, 30, false}) {
			t.Fatalf("retransmission %v", s)
		}
		if s := takeLost(t, b, 30); s != (sent{90, 10, true}) {
			t.Fatalf("retransmission %v", s)
		}
		b.Ack(0, 60, false)
		if b.AllAcked() {
			t.Fatal("AllAcked before the FIN")
		}
		b.Ack(90, 10, true)
		if b.AllAcked() {
			t.Fatal("AllAcked with a gap")
		}
		b.Ack(60, 30, false)
		if !b.AllAcked() || b.ring.b != nil {
			t.Fatalf("AllAcked %v, ring released %v", b.AllAcked(), b.ring.b == nil)
		}
	})
	t.Run("FIN alone", func(t *testing.T) {
		b := NewSendBuffer(4096, 0)
		b.Write(patBytes(0, 100))
		if s := takeNew(t, b, 1000, 1000); s != (sent{0, 100, false}) {
			t.Fatalf("%v", s)
		}
		b.Close()
		if !b.Sendable(0) {
			t.Fatal("FIN not sendable at a zero limit")
		}
		if s := takeNew(t, b, 1000, 0); s != (sent{100, 0, true}) {
			t.Fatalf("FIN-only %v", s)
		}
		b.MarkLost(100, 0, true)
		if !b.HasLost() {
			t.Fatal("lost FIN not queued")
		}
		if s := takeLost(t, b, 1000); s != (sent{100, 0, true}) {
			t.Fatalf("FIN retransmission %v", s)
		}
		b.Ack(0, 100, false)
		b.Ack(100, 0, true)
		if !b.AllAcked() {
			t.Fatal("not AllAcked")
		}
		b.MarkLost(100, 0, true) // late loss report after the ack
		if b.HasLost() {
			t.Fatal("acked FIN queued again")
		}
	})
	t.Run("empty stream", func(t *testing.T) {
		b := NewSendBuffer(1, 0)
		b.Close()
		if s := takeNew(t, b, 0, 0); s != (sent{0, 0, true}) {
			t.Fatalf("%v", s)
		}
		b.Ack(0, 0, true)
		if !b.AllAcked() || b.ring.b != nil {
			t.Fatal("empty stream not finished")
		}
	})
	t.Run("fin acked before sent is ignored", func(t *testing.T) {
		b := NewSendBuffer(100, 0)
		b.Write([]byte{1})
		b.Close()
		b.Ack(0, 1, true)
		if b.AllAcked() {
			t.Fatal("AllAcked without sending")
		}
	})
}

func TestSendBufferReset(t *testing.T) {
	b := NewSendBuffer(1<<14, 0)
	b.Write(patBytes(0, 5000))
	takeNew(t, b, 1400, 1<<20)
	takeNew(t, b, 1400, 1<<20)
	b.MarkLost(0, 1400, false)
	if size := b.Reset(); size != 2800 {
		t.Fatalf("Reset = %d, want SentMax 2800", size)
	}
	if size, ok := b.FinalSize(); size != 2800 || !ok {
		t.Fatalf("FinalSize %d %v", size, ok)
	}
	if b.Buffered() != 0 || b.Free() != 0 || b.Unsent() != 0 || b.HasLost() || b.Sendable(1<<30) ||
		b.Write([]byte{1}) != 0 || b.AllAcked() || b.ring.b != nil || b.Reset() != 2800 {
		t.Fatal("state after Reset")
	}
	if s := takeNew(t, b, 1000, 1<<20); s.n != 0 || s.fin {
		t.Fatalf("AppendNew after Reset: %v", s)
	}
	if s := takeLost(t, b, 1000); s.n != 0 || s.fin {
		t.Fatalf("AppendLost after Reset: %v", s)
	}
	b.Ack(0, 2800, true)
	b.MarkLost(0, 2800, true)
	b.Close()
	b.Release()
	b.Ack(0, 1, false)
	b.MarkLost(0, 1, true)
}

// TestSendBufferAckOverflow: with room for few acknowledged intervals,
// acknowledgements that cannot be recorded turn into retransmissions and
// the stream still completes.
func TestSendBufferAckOverflow(t *testing.T) {
	b := NewSendBuffer(1<<16, 2)
	b.Write(patBytes(0, 20000))
	b.Close()
	var m []sent
	for {
		s := takeNew(t, b, 1000, 1<<20)
		if s.n == 0 && !s.fin {
			break
		}
		m = append(m, s)
	}
	// Acknowledge every other message: 10 separate intervals, room for 2.
	for i := 1; i < len(m); i += 2 {
		b.Ack(m[i].off, m[i].n, m[i].fin)
	}
	for i := 0; i < len(m); i += 2 {
		b.MarkLost(m[i].off, m[i].n, m[i].fin)
	}
	for round := 0; !b.AllAcked(); round++ {
		if round > 100 {
			t.Fatalf("no progress: acked %d", b.Acked())
		}
		s := takeLost(t, b, 1000)
		if s.n == 0 && !s.fin {
			t.Fatalf("nothing to retransmit, acked %d, lost %v ack %v", b.Acked(), spansOf(&b.lost), spansOf(&b.ackRs))
		}
		b.Ack(s.off, s.n, s.fin)
	}
}

func TestSendBufferBadArguments(t *testing.T) {
	b := NewSendBuffer(-1, -1)
	if b.Capacity() != 1 {
		t.Fatalf("capacity %d", b.Capacity())
	}
	if NewSendBuffer(math.MaxInt, 0).Capacity() != MaxSendCapacity {
		t.Fatal("capacity not clamped")
	}
	b = NewSendBuffer(100, 0)
	b.Write(patBytes(0, 50))
	takeNew(t, b, 50, 1000)
	b.Ack(math.MaxUint64-3, 100, true)
	b.Ack(40, -5, false)
	b.Ack(10, 1000, false) // beyond SentMax: clipped to [10,50)
	b.MarkLost(math.MaxUint64, math.MaxInt, true)
	b.MarkLost(0, 1000, false)
	if b.Acked() != 0 {
		t.Fatalf("Acked %d", b.Acked())
	}
	if s := takeLost(t, b, 1000); s != (sent{0, 10, false}) {
		t.Fatalf("lost %v", s)
	}
	if s := takeLost(t, b, -1); s.n != 0 {
		t.Fatalf("negative max: %v", s)
	}
}

// TestSendBufferChurn opens and finishes 2,000 streams: each drops its ring
// when done, so nothing accumulates.
func TestSendBufferChurn(t *testing.T) {
	bufs := make([]*SendBuffer, 0, 2000)
	for i := 0; i < 2000; i++ {
		b := NewSendBuffer(1<<20, 0)
		b.Write(patBytes(0, 1000))
		b.Close()
		s := takeNew(t, b, 1400, 1<<20)
		switch i % 3 {
		case 0:
			b.Ack(s.off, s.n, s.fin)
		case 1:
			b.Reset()
		default:
			b.Release()
		}
		bufs = append(bufs, b)
	}
	for i, b := range bufs {
		if b.ring.b != nil {
			t.Fatalf("stream %d kept its ring", i)
		}
		if cap(b.lost.r) != 0 || cap(b.ackRs.r) != 0 {
			t.Fatalf("stream %d without loss allocated interval sets", i)
		}
	}
}

func TestSendBufferAllocs(t *testing.T) {
	b := NewSendBuffer(64<<10, 0)
	chunk := patBytes(0, 1400)
	pkt := make([]byte, 0, 2048)
	cycle := func() {
		b.Write(chunk)
		var off uint64
		var n int
		pkt, off, n, _ = b.AppendNew(pkt[:0], 1400, math.MaxUint64)
		b.MarkLost(off, n/2, false)
		b.Ack(off+uint64(n/2), n-n/2, false)
		pkt, off, n, _ = b.AppendLost(pkt[:0], 1400)
		b.Ack(off, n, false)
	}
	for i := 0; i < 100; i++ {
		cycle()
	}
	if allocs := testing.AllocsPerRun(1000, cycle); allocs != 0 {
		t.Fatalf("SendBuffer write/append/ack: %v allocations per run, want 0", allocs)
	}
	if b.Buffered() != 0 {
		t.Fatalf("Buffered %d", b.Buffered())
	}
}

// TestSendBufferUnsentRoom: the room under a bound on unsent bytes, with
// its hysteresis; sending makes room, acknowledging does not.
func TestSendBufferUnsentRoom(t *testing.T) {
	var b SendBuffer
	b.Init(1<<20, DefaultMaxRanges)
	if r := b.UnsentRoom(0); r != math.MaxInt {
		t.Fatalf("no bound: room %d", r)
	}
	b.Write(patBytes(0, 40<<10))
	if r := b.UnsentRoom(100 << 10); r != 60<<10 {
		t.Fatalf("40 KiB unsent under 100 KiB: room %d", r)
	}
	b.Write(patBytes(40<<10, 20<<10))
	if r := b.UnsentRoom(100 << 10); r != 0 {
		t.Fatalf("60 KiB unsent, above half of 100 KiB: room %d", r)
	}
	out, _, n, _ := b.AppendNew(nil, 12<<10, math.MaxUint64)
	if n != 12<<10 || !bytes.Equal(out, patBytes(0, n)) {
		t.Fatalf("AppendNew sent %d bytes", n)
	}
	if r := b.UnsentRoom(100 << 10); r != 52<<10 {
		t.Fatalf("48 KiB unsent: room %d, want 52 KiB", r)
	}
	b.Ack(0, n, false)
	if r := b.UnsentRoom(100 << 10); r != 52<<10 {
		t.Fatalf("an ACK changed the room to %d", r)
	}
}
