package udpproxy

import (
	"math/rand/v2"
	"testing"
	"time"
)

// decider returns a proxy shell that can only make decisions.
func decider(cfg Config) *Proxy {
	return &Proxy{cfg: cfg.withDefaults(), rng: [2]*rand.Rand{newRand(cfg.Seed, 0), newRand(cfg.Seed, 1)}}
}

func TestDecideDeterministic(t *testing.T) {
	cfg := Config{Loss: 0.2, Duplicate: 0.2, Reorder: 0.2, Corrupt: 0.3, Delay: time.Millisecond, Seed: 11}
	a, b := decider(cfg), decider(cfg)
	other := decider(Config{Loss: 0.2, Duplicate: 0.2, Reorder: 0.2, Corrupt: 0.3, Seed: 12})
	same := true
	for i := range 2000 {
		size := i % 100
		pa, pb := a.decide(i%2, size), b.decide(i%2, size)
		if pa != pb {
			t.Fatalf("decision %d differs for one seed: %+v vs %+v", i, pa, pb)
		}
		if other.decide(i%2, size) != pa {
			same = false
		}
		for _, c := range pa.copies[:pa.n] {
			if c.delay != time.Millisecond && c.delay != time.Millisecond+DefaultReorderDelay {
				t.Fatalf("delay %v", c.delay)
			}
			if size == 0 && c.nflip > 0 || c.nflip > 3 {
				t.Fatalf("%d flips in a %d-byte datagram", c.nflip, size)
			}
			for j, f := range c.flips[:c.nflip] {
				if f < 0 || f >= 8*size || containsInt(c.flips[:j], f) {
					t.Fatalf("bad flips %v for %d bytes", c.flips[:c.nflip], size)
				}
			}
		}
	}
	if same {
		t.Error("another seed made the same 2000 decisions")
	}
}

func TestDecideExtremes(t *testing.T) {
	none := decider(Config{})
	all := decider(Config{Duplicate: 1, Reorder: 1, Corrupt: 1, ReorderDelay: time.Second})
	lost := decider(Config{Loss: 1, Duplicate: 1})
	for i := range 1000 {
		if p := none.decide(0, 10); p.n != 1 || p.copies[0] != (copyPlan{}) {
			t.Fatalf("zero config changed a datagram: %+v", p)
		}
		if p := lost.decide(1, 10); p.n != 0 {
			t.Fatalf("Loss 1 kept a datagram: %+v", p)
		}
		p := all.decide(i%2, 10)
		if p.n != 2 {
			t.Fatalf("Duplicate 1 sent %d copies", p.n)
		}
		for _, c := range p.copies {
			if c.delay != time.Second || c.nflip == 0 {
				t.Fatalf("copy not reordered and corrupted: %+v", c)
			}
		}
	}
	if s := all.stats[0].snapshot(); s.Received != 500 || s.Duplicated != 500 || s.Reordered != 1000 || s.Corrupted != 1000 {
		t.Errorf("stats %+v", s)
	}
}

func TestFlipRestores(t *testing.T) {
	pkt := payload(7)
	c := copyPlan{nflip: 3, flips: [3]int{0, 9, 8*payloadSize - 1}}
	c.flip(pkt)
	if d := bitDiff(pkt, payload(7)); d != 3 {
		t.Fatalf("%d bits flipped, want 3", d)
	}
	c.flip(pkt)
	if bitDiff(pkt, payload(7)) != 0 {
		t.Fatal("second flip did not restore the datagram")
	}
}

func TestQueueOrder(t *testing.T) {
	var q queue
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Now()
	for i := range 500 {
		q.push(delayed{at: base.Add(time.Duration(r.IntN(50)) * time.Millisecond), seq: uint64(i)})
	}
	prev := q.pop()
	for len(q) > 0 {
		d := q.pop()
		if d.before(&prev) {
			t.Fatalf("popped %v/%d after %v/%d", d.at.Sub(base), d.seq, prev.at.Sub(base), prev.seq)
		}
		if d.at.Equal(prev.at) && d.seq < prev.seq {
			t.Fatal("equal times not popped in insertion order")
		}
		prev = d
	}
}

func TestBuffers(t *testing.T) {
	for _, n := range []int{0, smallBuf, smallBuf + 1, bufSize} {
		b := getBuf(n)
		if len(*b) < n {
			t.Fatalf("getBuf(%d) returned %d bytes", n, len(*b))
		}
		putBuf(b)
	}
}
