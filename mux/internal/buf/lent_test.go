package buf

import (
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// testPacket is a received packet's buffer lent to a RecvBuffer: it counts
// its references and, once the last one is released (or at once when none
// was taken), scribbles over its bytes as a reused pool buffer would, so
// that a read of data the buffer no longer holds returns garbage.
type testPacket struct {
	b       []byte
	refs    int
	holds   *int
	decline bool
	done    bool
}

func (p *testPacket) Hold() Ref {
	if p.decline {
		return nil
	}
	p.refs++
	*p.holds++
	return p
}

func (p *testPacket) Release() {
	if p.refs <= 0 {
		panic("released more often than held")
	}
	p.refs--
	*p.holds--
	if p.refs == 0 && p.done {
		p.scribble()
	}
}

// received is the end of the Insert call: the owner's own use of the
// buffer ends, and without a reference it is reused at once.
func (p *testPacket) received() {
	p.done = true
	if p.refs == 0 {
		p.scribble()
	}
}

func (p *testPacket) scribble() {
	for i := range p.b {
		p.b[i] = 0xEE
	}
}

// insertLent inserts pattern bytes [off, off+n) from a fresh packet buffer.
func insertLent(b *RecvBuffer, off uint64, n int, fin, decline bool, holds *int) error {
	p := &testPacket{b: patBytes(off, n), holds: holds, decline: decline}
	err := b.InsertLent(off, p.b, fin, p)
	p.received()
	return err
}

// TestLentInOrder: in-order pieces of at least minLend bytes are kept in
// their packets, so no ring is allocated, and the reader gets every byte
// once; every reference is released when the bytes are read.
func TestLentInOrder(t *testing.T) {
	b := NewRecvBuffer(1<<20, 0)
	holds := 0
	var off uint64
	for i := 0; i < 100; i++ {
		n := 1200 + i
		if err := insertLent(b, off, n, i == 99, false, &holds); err != nil {
			t.Fatal(err)
		}
		off += uint64(n)
	}
	if b.ring.b != nil {
		t.Fatal("a ring was allocated for data that all arrived in order")
	}
	if holds != 100 {
		t.Fatalf("%d pieces held, want 100", holds)
	}
	got := make([]byte, 0, off)
	p := make([]byte, 777)
	for {
		n, err := b.Read(p)
		got = append(got, p[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil || n == 0 {
			t.Fatalf("Read = %d, %v", n, err)
		}
	}
	checkPat(t, "read", 0, got)
	if uint64(len(got)) != off || holds != 0 {
		t.Fatalf("read %d of %d bytes, %d references left", len(got), off, holds)
	}
}

// TestLentSmallCopied: pieces below minLend are copied, not held.
func TestLentSmallCopied(t *testing.T) {
	b := NewRecvBuffer(1<<20, 0)
	holds := 0
	if err := insertLent(b, 0, minLend-1, false, false, &holds); err != nil {
		t.Fatal(err)
	}
	if holds != 0 {
		t.Fatal("a small piece was held")
	}
	p := make([]byte, minLend)
	n, _ := b.Read(p)
	checkPat(t, "read", 0, p[:n])
	if n != minLend-1 {
		t.Fatalf("read %d bytes", n)
	}
}

// TestLentMismatch: a retransmission that differs from lent data is
// caught as from data in the ring.
func TestLentMismatch(t *testing.T) {
	b := NewRecvBuffer(1<<20, 0)
	holds := 0
	if err := insertLent(b, 0, 4000, false, false, &holds); err != nil {
		t.Fatal(err)
	}
	bad := patBytes(1000, 2000)
	bad[1500] ^= 1
	if err := b.Insert(1000, bad, false); !errors.Is(err, ErrDataMismatch) {
		t.Fatalf("Insert of differing bytes over lent data: %v", err)
	}
	if err := b.Insert(1000, patBytes(1000, 4000), false); err != nil {
		t.Fatalf("Insert of the same bytes, and more: %v", err)
	}
	p := make([]byte, 6000)
	n, _ := b.Read(p)
	if n != 5000 {
		t.Fatalf("read %d bytes, want 5000", n)
	}
	checkPat(t, "read", 0, p[:n])
}

// TestLentCloseReset: Close and Reset release every reference.
func TestLentCloseReset(t *testing.T) {
	for _, reset := range []bool{false, true} {
		b := NewRecvBuffer(1<<20, 0)
		holds := 0
		for i := 0; i < 10; i++ {
			if err := insertLent(b, uint64(i)*2000, 2000, false, false, &holds); err != nil {
				t.Fatal(err)
			}
		}
		if reset {
			if err := b.Reset(20000); err != nil {
				t.Fatal(err)
			}
		} else {
			b.Close()
		}
		if holds != 0 {
			t.Fatalf("reset %v: %d references left", reset, holds)
		}
	}
}

// TestLentRandom drives a buffer with in-order, out-of-order, duplicate
// and overlapping pieces, holders that sometimes decline, and reads of
// random sizes: the reader must get exactly the stream, every reference
// must be released by the end, and the lent queue's bound must hold.
// Buffers are scribbled over as soon as they are released, so a piece
// read after its release shows up as wrong bytes.
func TestLentRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := 0; round < 200; round++ {
		const total = 400_000
		window := 1 << (14 + rng.IntN(6))
		b := NewRecvBuffer(window, 0)
		holds := 0
		got := make([]byte, 0, total)
		p := make([]byte, 1<<16)
		for step := 0; step < 20000 && uint64(len(got)) < total; step++ {
			if rng.IntN(3) == 0 {
				n, err := b.Read(p[:1+rng.IntN(len(p))])
				if err != nil && err != io.EOF {
					t.Fatal(err)
				}
				got = append(got, p[:n]...)
				b.AnnounceLimit()
				continue
			}
			// A piece near the contiguous end, sometimes a duplicate,
			// sometimes ahead of a gap.
			off := b.Contiguous()
			switch rng.IntN(6) {
			case 0:
				off -= min(off-b.ReadOffset(), uint64(rng.IntN(3000)))
			case 1:
				off += uint64(rng.IntN(5000))
			}
			n := 1 + rng.IntN(3000)
			end := min(off+uint64(n), b.Limit(), total)
			if end <= off {
				continue
			}
			err := insertLent(b, off, int(end-off), end == total, rng.IntN(8) == 0, &holds)
			if err != nil && !errors.Is(err, ErrTooFragmented) {
				t.Fatalf("round %d: Insert(%d, %d): %v", round, off, end-off, err)
			}
			if b.lent.n > maxLent {
				t.Fatal("lent queue past its bound")
			}
		}
		checkPat(t, "stream", 0, got)
		b.Close()
		if holds != 0 {
			t.Fatalf("round %d: %d references left after Close", round, holds)
		}
	}
}
