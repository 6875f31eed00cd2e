package buf

import (
	"bytes"
	"io"
	"math"
	"testing"
)

// TestRingArraysCleared: an array a ring gives up, by release or by
// growing, is cleared before anyone else gets it, and a ring that grows
// keeps its bytes.
func TestRingArraysCleared(t *testing.T) {
	var r ring
	r.grow(100, 1<<20, 0, 0)
	if len(r.b) != minRing {
		t.Fatalf("first ring of %d bytes, want %d", len(r.b), minRing)
	}
	old := r.b
	for i := range r.b {
		r.b[i] = 0xa5
	}
	r.grow(2*minRing, 1<<20, minRing-10, minRing+10) // keeps [minRing-10, minRing+10)
	if len(r.b) != 2*minRing {
		t.Fatalf("grown ring of %d bytes, want %d", len(r.b), 2*minRing)
	}
	got := make([]byte, 20)
	r.get(got, minRing-10)
	if want := bytes.Repeat([]byte{0xa5}, 20); !bytes.Equal(got, want) {
		t.Fatalf("grown ring lost its bytes: %x", got)
	}
	if !allZero(old) {
		t.Fatal("the array the ring outgrew was pooled uncleared")
	}
	for i := range r.b {
		r.b[i] = 0x5a
	}
	grown := r.b
	r.release()
	if r.b != nil || !allZero(grown) {
		t.Fatal("a released array was pooled uncleared")
	}
	for range 4 {
		if b := getRingArray(2 * minRing); !allZero(b) {
			t.Fatal("getRingArray returned bytes of an earlier ring")
		}
	}
	// Sizes outside the pooled classes come and go as plain arrays.
	odd := getRingArray(5000)
	if len(odd) != 5000 || !allZero(odd) {
		t.Fatalf("array of %d bytes", len(odd))
	}
	putRingArray(odd)
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// TestStreamBuffersPooled: a stream that carries a short request and its
// answer, on fresh buffers each time, allocates no ring once the pools
// are warm: the arrays go back when the buffers are done with them.
func TestStreamBuffersPooled(t *testing.T) {
	var sb SendBuffer
	var rb RecvBuffer
	pkt := make([]byte, 0, 1500)
	rd := make([]byte, 64)
	msg := []byte("request")
	life := func() {
		sb.Init(1<<20, 0)
		rb.Init(256<<10, 0)
		sb.Write(msg)
		sb.Close()
		var off uint64
		var n int
		var fin bool
		pkt, off, n, fin = sb.AppendNew(pkt[:0], 1400, math.MaxUint64)
		if err := rb.Insert(off, pkt[:n], fin); err != nil {
			t.Fatal(err)
		}
		sb.Ack(off, n, fin) // everything acknowledged: the ring goes back
		if k, err := rb.Read(rd); k != len(msg) || err != nil {
			t.Fatalf("read %d %v", k, err)
		}
		if _, err := rb.Read(rd); err != io.EOF { // the ring goes back
			t.Fatalf("read %v, want EOF", err)
		}
		if sb.ring.b != nil || rb.ring.b != nil {
			t.Fatal("a finished buffer keeps its ring")
		}
	}
	for range 10 {
		life()
	}
	allocs := testing.AllocsPerRun(1000, life)
	if raceEnabled {
		return // the race detector empties sync.Pools at random
	}
	if allocs != 0 {
		t.Fatalf("a short stream on fresh buffers: %v allocations, want 0", allocs)
	}
}

// TestRecvReleaseIdle: a receive buffer gives its ring back only when it
// holds nothing to read, and takes one again for later data.
func TestRecvReleaseIdle(t *testing.T) {
	var b RecvBuffer
	b.Init(1<<16, 0)
	rd := make([]byte, 64)
	b.Insert(0, []byte("hello"), false)
	b.ReleaseIdle()
	if b.ring.b == nil {
		t.Fatal("released a ring with unread bytes")
	}
	b.Read(rd)
	b.Insert(10, []byte("later"), false) // out of order: kept for the gap
	b.ReleaseIdle()
	if b.ring.b == nil {
		t.Fatal("released a ring with data beyond a gap")
	}
	if err := b.Insert(5, []byte("-gap-"), false); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Read(rd); string(rd[:n]) != "-gap-later" {
		t.Fatalf("read %q", rd[:n])
	}
	b.Init(1<<16, 0)
	b.Insert(0, []byte("abc"), false)
	b.Read(rd)
	b.ReleaseIdle()
	if b.ring.b != nil {
		t.Fatal("kept a ring with nothing to read")
	}
	b.Insert(3, []byte("def"), true)
	if n, _ := b.Read(rd); string(rd[:n]) != "def" {
		t.Fatalf("read %q after the ring came back", rd[:n])
	}
	if _, err := b.Read(rd); err != io.EOF {
		t.Fatalf("read %v, want EOF", err)
	}
}
