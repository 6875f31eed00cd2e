package buf

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type frag struct {
	off  uint32
	data []byte
}

// fragments splits d into pieces of at most size bytes.
func fragments(d []byte, size int) []frag {
	var out []frag
	for off := 0; off < len(d); off += size {
		out = append(out, frag{uint32(off), d[off:min(off+size, len(d))]})
	}
	return out
}

// deliver feeds frags and expects completion exactly at the last one.
func deliver(t *testing.T, r *Reassembler, seq uint32, d []byte, frags []frag, now time.Time) {
	t.Helper()
	for i, f := range frags {
		got, ok, err := r.Add(seq, uint32(len(d)), f.off, f.data, now)
		if err != nil {
			t.Fatalf("seq %d fragment %d: %v", seq, i, err)
		}
		if ok != (i == len(frags)-1) {
			t.Fatalf("seq %d fragment %d of %d: ok = %v", seq, i, len(frags), ok)
		}
		if ok && !bytes.Equal(got, d) {
			t.Fatalf("seq %d: datagram differs", seq)
		}
	}
}

func TestReassemblerOrders(t *testing.T) {
	r := NewReassembler(1<<20, 8, time.Second)
	rng := rand.New(rand.NewPCG(7, 7))
	d := patBytes(0, 5000)
	fr := fragments(d, 1200)
	deliver(t, r, 1, d, fr, t0) // in order
	rev := append([]frag(nil), fr...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	deliver(t, r, 2, d, rev, t0)
	for seq := uint32(3); seq < 50; seq++ {
		d := patBytes(uint64(seq), 1+rng.IntN(MaxDatagramSize))
		fr := fragments(d, 1100+rng.IntN(2000)) // a fragment fills a packet of ≥ 1,200 bytes
		rng.Shuffle(len(fr), func(i, j int) { fr[i], fr[j] = fr[j], fr[i] })
		deliver(t, r, seq, d, fr, t0)
	}
	if s := r.Stats(); s.Completed != 49 || s.Rejected+s.Evicted+s.Expired != 0 || r.Pending() != 0 {
		t.Fatalf("stats %+v pending %d", s, r.Pending())
	}
	// One fragment carrying the whole datagram is returned without a copy.
	whole := patBytes(9, 100)
	if got, ok, err := r.Add(100, 100, 0, whole, t0); !ok || err != nil || &got[0] != &whole[0] {
		t.Fatal("single-fragment datagram")
	}
}

func TestReassemblerDuplicatesAndOverlap(t *testing.T) {
	r := NewReassembler(1<<20, 8, time.Second)
	d := patBytes(0, 3000)
	add := func(off, n int) (bool, error) {
		_, ok, err := r.Add(5, 3000, uint32(off), d[off:off+n], t0)
		return ok, err
	}
	for _, c := range [][2]int{{0, 1000}, {0, 1000}, {500, 1000}, {2000, 1000}, {2500, 500}} {
		if ok, err := add(c[0], c[1]); ok || err != nil {
			t.Fatalf("Add%v = %v, %v", c, ok, err)
		}
	}
	got, ok, err := r.Add(5, 3000, 1000, d[1000:2500], t0)
	if !ok || err != nil || !bytes.Equal(got, d) {
		t.Fatalf("completion: %v %v", ok, err)
	}
	// Fragments of a delivered datagram are late: it is not delivered twice.
	if ok, err := add(0, 3000); ok || err != nil {
		t.Fatalf("late fragment: %v %v", ok, err)
	}
	if s := r.Stats(); s.Late != 1 || s.Completed != 1 {
		t.Fatalf("stats %+v", s)
	}

	// Overlapping fragments that differ drop the datagram.
	bad := append([]byte(nil), d[900:1100]...)
	bad[50] ^= 0xff // offset 950
	r.Add(6, 3000, 0, d[:1000], t0)
	if _, ok, err := r.Add(6, 3000, 900, bad, t0); ok || !errors.Is(err, ErrFragmentMismatch) {
		t.Fatalf("mismatch: %v %v", ok, err)
	}
	if r.Pending() != 0 {
		t.Fatal("mismatched datagram kept")
	}
	if _, ok, _ := r.Add(6, 3000, 1000, d[1000:], t0); ok {
		t.Fatal("dropped datagram completed")
	}

	// A different total for the same sequence number drops it.
	r.Add(7, 3000, 0, d[:1000], t0)
	if _, _, err := r.Add(7, 2999, 1000, d[1000:2000], t0); !errors.Is(err, ErrBadFragment) {
		t.Fatalf("inconsistent total: %v", err)
	}
	if r.Pending() != 0 || r.Stats().Rejected != 2 {
		t.Fatalf("pending %d stats %+v", r.Pending(), r.Stats())
	}
}

func TestReassemblerBounds(t *testing.T) {
	r := NewReassembler(1<<20, 8, time.Second)
	max := patBytes(1, MaxDatagramSize)
	deliver(t, r, 1, max, fragments(max, 1400), t0)
	for _, c := range []struct {
		total, off uint32
		n          int
		want       error
	}{
		{MaxDatagramSize + 1, 0, 100, ErrDatagramTooLarge},
		{1 << 31, 0, 100, ErrDatagramTooLarge},
		{100, 0, 0, ErrBadFragment},
		{100, 50, 51, ErrBadFragment},
		{100, 1<<32 - 1, 2, ErrBadFragment},
		{0, 0, 1, ErrBadFragment},
	} {
		if _, ok, err := r.Add(2, c.total, c.off, make([]byte, c.n), t0); ok || !errors.Is(err, c.want) {
			t.Errorf("Add(total %d, off %d, n %d) = %v, %v, want %v", c.total, c.off, c.n, ok, err, c.want)
		}
	}
	// A reassembler too small for a datagram's buffer class refuses it.
	small := NewReassembler(32<<10, 8, time.Second)
	if _, _, err := small.Add(1, 40000, 0, make([]byte, 1000), t0); !errors.Is(err, ErrDatagramTooLarge) {
		t.Fatalf("oversized for maxBytes: %v", err)
	}
	// Too many disjoint pieces.
	d := patBytes(0, 20000)
	for i := 0; i < 64; i++ {
		if _, _, err := r.Add(3, 20000, uint32(i*300), d[i*300:i*300+1], t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := r.Add(3, 20000, 19999, d[19999:], t0); !errors.Is(err, ErrTooFragmented) {
		t.Fatalf("65th piece: %v", err)
	}
}

func TestReassemblerExpiry(t *testing.T) {
	r := NewReassembler(1<<20, 8, 2*time.Second)
	if !r.NextDeadline().IsZero() {
		t.Fatal("deadline with nothing pending")
	}
	d := patBytes(0, 3000)
	r.Add(1, 3000, 0, d[:1000], t0)
	r.Add(2, 3000, 0, d[:1000], t0.Add(time.Second))
	if dl := r.NextDeadline(); !dl.Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("NextDeadline %v", dl)
	}
	if n := r.Expire(t0.Add(2*time.Second - 1)); n != 0 {
		t.Fatalf("expired %d early", n)
	}
	if n := r.Expire(t0.Add(2 * time.Second)); n != 1 || r.Pending() != 1 {
		t.Fatalf("Expire = %d, pending %d", n, r.Pending())
	}
	if dl := r.NextDeadline(); !dl.Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("NextDeadline %v", dl)
	}
	// The expired datagram's remaining fragments are ignored.
	if _, ok, _ := r.Add(1, 3000, 1000, d[1000:], t0.Add(3*time.Second)); ok || r.Pending() != 1 {
		t.Fatal("expired datagram restarted")
	}
	// The live one still completes.
	if got, ok, _ := r.Add(2, 3000, 1000, d[1000:], t0.Add(3*time.Second)); !ok || !bytes.Equal(got, d) {
		t.Fatal("datagram 2 incomplete")
	}
	if s := r.Stats(); s.Expired != 1 || s.Completed != 1 || s.Late != 1 {
		t.Fatalf("stats %+v", s)
	}
	if NewReassembler(0, 0, 0).timeout != DefaultReassemblyTimeout {
		t.Fatal("default timeout")
	}
}

func TestReassemblerEviction(t *testing.T) {
	// Memory: room for three 16 KiB buffers.
	r := NewReassembler(48<<10, 100, time.Minute)
	d := patBytes(0, 10000) // class 16 KiB
	for seq := uint32(1); seq <= 5; seq++ {
		if _, _, err := r.Add(seq, 10000, 0, d[:100], t0.Add(time.Duration(seq))); err != nil {
			t.Fatal(err)
		}
		if r.HeldBytes() > 48<<10 {
			t.Fatalf("held %d", r.HeldBytes())
		}
	}
	if r.Pending() != 3 || r.Stats().Evicted != 2 {
		t.Fatalf("pending %d stats %+v", r.Pending(), r.Stats())
	}
	// The oldest (1, 2) were evicted; 3 completes.
	if _, ok, _ := r.Add(1, 10000, 100, d[100:], t0); ok {
		t.Fatal("evicted datagram completed")
	}
	if got, ok, _ := r.Add(3, 10000, 100, d[100:], t0); !ok || !bytes.Equal(got, d) {
		t.Fatal("datagram 3 incomplete")
	}
	// A big datagram evicts as many old ones as it needs.
	big := patBytes(0, 40000) // class 64 KiB > 48 KiB: refused outright
	if _, _, err := r.Add(9, 40000, 0, big[:10], t0); !errors.Is(err, ErrDatagramTooLarge) {
		t.Fatalf("big: %v", err)
	}
	mid := patBytes(0, 20000) // class 32 KiB: evicts 4 (and frees spare buffers)
	if _, _, err := r.Add(10, 20000, 0, mid[:10], t0); err != nil {
		t.Fatal(err)
	}
	if r.HeldBytes() > 48<<10 || r.Pending() != 2 {
		t.Fatalf("held %d pending %d stats %+v", r.HeldBytes(), r.Pending(), r.Stats())
	}
	// Count limit: maxPending 2.
	q := NewReassembler(1<<20, 2, time.Minute)
	for seq := uint32(1); seq <= 3; seq++ {
		q.Add(seq, 3000, 0, d[:10], t0)
	}
	if q.Pending() != 2 || q.Stats().Evicted != 1 || q.find(1) >= 0 {
		t.Fatalf("pending %d stats %+v", q.Pending(), q.Stats())
	}
	q.Release()
	if q.Pending() != 0 || q.HeldBytes() != 0 {
		t.Fatal("Release kept state")
	}
	deliver(t, q, 50, d, fragments(d, 4000), t0)
}

func TestReassemblerAllocs(t *testing.T) {
	r := NewReassembler(1<<20, 16, time.Second)
	d := patBytes(0, 3500)
	fr := fragments(d, 1200)
	seq := uint32(0)
	now := t0
	cycle := func() {
		seq++
		// Two datagrams interleaved, one fragment lost and expired.
		for _, f := range fr {
			r.Add(seq, uint32(len(d)), f.off, f.data, now)
			r.Add(seq+1<<20, uint32(len(d)), f.off, f.data[:len(f.data)-1], now)
		}
		now = now.Add(2 * time.Second)
		r.Expire(now)
		r.NextDeadline()
	}
	for i := 0; i < 100; i++ {
		cycle()
	}
	if allocs := testing.AllocsPerRun(1000, cycle); allocs != 0 {
		t.Fatalf("Reassembler add/expire: %v allocations per run, want 0", allocs)
	}
	if s := r.Stats(); s.Completed != 1101 || s.Expired != 1101 { // AllocsPerRun runs once more to warm up
		t.Fatalf("stats %+v", s)
	}
}
