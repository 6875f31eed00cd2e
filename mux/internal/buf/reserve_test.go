package buf

import (
	"bytes"
	"testing"
)

// fill writes the stream pattern for offsets [off, off+len(p)) into p.
func fill(p []byte, off uint64) {
	for i := range p {
		p[i] = pat(off + uint64(i))
	}
}

// TestSendBufferReserveCommit streams data through reservations of odd
// sizes, committing part of each, across the ring's growth and wraps: what
// the engine sends must be exactly the committed bytes, in order.
func TestSendBufferReserveCommit(t *testing.T) {
	const capacity = 10000
	b := NewSendBuffer(capacity, 0)
	var written, next uint64
	for round := 0; written < 200000; round++ {
		r := b.Reserve(1 + round*37%5000)
		if len(r) == 0 {
			// Full: send and acknowledge everything unacknowledged.
			for b.Unsent() > 0 {
				s := takeNew(t, b, 1200, 1<<62)
				if s.off != next {
					t.Fatalf("sent offset %d, want %d", s.off, next)
				}
				next += uint64(s.n)
				b.Ack(s.off, s.n, false)
			}
			if b.Free() != capacity {
				t.Fatalf("after acknowledging everything Free = %d, want %d", b.Free(), capacity)
			}
			continue
		}
		if b.Write([]byte{1}) != 0 {
			t.Fatal("Write took data while a reservation was open")
		}
		if b.Reserve(10) != nil {
			t.Fatal("a second Reserve before Commit returned room")
		}
		use := max(len(r)-round%3, 0) // sometimes less than reserved
		fill(r[:use], written)
		for i := use; i < len(r); i++ {
			r[i] = 0xEE // bytes past the commit must not be sent
		}
		if got := b.Commit(use); got != use {
			t.Fatalf("Commit(%d) = %d", use, got)
		}
		written += uint64(use)
		if b.Commit(5) != 0 {
			t.Fatal("Commit without a reservation took bytes")
		}
	}
	for b.Unsent() > 0 {
		s := takeNew(t, b, 1200, 1<<62)
		next += uint64(s.n)
	}
	if next != written {
		t.Fatalf("sent %d bytes, committed %d", next, written)
	}
}

// TestSendBufferReserveWrap: a reservation never spans the ring's end; the
// bytes after the wrap come with the next one.
func TestSendBufferReserveWrap(t *testing.T) {
	b := NewSendBuffer(4096, 0)
	p := patBytes(0, 3000)
	if b.Write(p) != 3000 {
		t.Fatal("Write")
	}
	s := takeNew(t, b, 3000, 1<<62)
	b.Ack(s.off, s.n, false)
	r := b.Reserve(4096)
	if len(r) != 1096 {
		t.Fatalf("reservation at offset 3000 of a 4 KiB ring is %d bytes, want 1096 (to the end)", len(r))
	}
	fill(r, 3000)
	b.Commit(len(r))
	r = b.Reserve(4096)
	if len(r) != 3000 {
		t.Fatalf("reservation after the wrap is %d bytes, want 3000", len(r))
	}
	fill(r, 4096)
	b.Commit(len(r))
	if b.Free() != 0 {
		t.Fatalf("Free = %d, want 0", b.Free())
	}
	takeNew(t, b, 4096, 1<<62) // checks the pattern across the wrap
}

// TestSendBufferReserveAbandoned: Close, Reset or Release between Reserve
// and Commit drops the reserved bytes, and the array the holder may still
// write to is never cleared and pooled for another stream.
func TestSendBufferReserveAbandoned(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(b *SendBuffer)
	}{
		{"Close", func(b *SendBuffer) { b.Close() }},
		{"Reset", func(b *SendBuffer) { b.Reset() }},
		{"Release", func(b *SendBuffer) { b.Release() }},
		{"Close, FIN acknowledged", func(b *SendBuffer) {
			b.Close()
			s := takeNew(t, b, 4096, 1<<62)
			if !s.fin {
				t.Fatal("no FIN sent")
			}
			b.Ack(s.off, s.n, s.fin)
			if !b.AllAcked() {
				t.Fatal("FIN acknowledged but not AllAcked")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewSendBuffer(4096, 0) // a pooled ring size
			r := b.Reserve(100)
			if len(r) != 100 {
				t.Fatalf("Reserve(100) = %d bytes", len(r))
			}
			for i := range r {
				r[i] = 0xAA // the holder writes while the stream ends
			}
			tc.end(b)
			if b.Commit(len(r)) != 0 {
				t.Fatal("Commit after the stream ended took bytes")
			}
			if !bytes.Equal(r, bytes.Repeat([]byte{0xAA}, 100)) {
				t.Fatal("the reserved array was cleared: it went back to a pool (putRingArray clears) while held")
			}
			if b.Unsent() != 0 {
				t.Fatalf("Unsent = %d after the stream ended", b.Unsent())
			}
		})
	}
}

// TestSendBufferReserveNothing: a full, closed or reset buffer reserves
// nothing.
func TestSendBufferReserveNothing(t *testing.T) {
	b := NewSendBuffer(100, 0)
	if b.Write(make([]byte, 100)) != 100 || b.Reserve(1) != nil {
		t.Fatal("a full buffer reserved room")
	}
	b = NewSendBuffer(100, 0)
	b.Close()
	if b.Reserve(1) != nil {
		t.Fatal("a closed buffer reserved room")
	}
	b = NewSendBuffer(100, 0)
	b.Reset()
	if b.Reserve(1) != nil {
		t.Fatal("a reset buffer reserved room")
	}
	if NewSendBuffer(100, 0).Reserve(0) != nil {
		t.Fatal("Reserve(0) returned room")
	}
}
