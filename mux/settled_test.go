package mux

import (
	"math/rand/v2"
	"testing"
)

// TestSettledRuns: the links over runs of settled packets (sentRing's
// ackedBelow and settledAbove) agree with a packet-by-packet count, under
// random acknowledgements and losses, ring growth and retirement, while
// the links are compressed by every query.
func TestSettledRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var r sentRing
	for round := 0; round < 20000; round++ {
		switch op := rng.IntN(10); {
		case op < 4 || r.n == 0: // send
			r.add()
		case op < 7: // settle a random outstanding packet
			pn := r.base + uint64(rng.IntN(r.n))
			if p := r.get(pn); p.state == pktOutstanding {
				p.state = pktAcked
				if rng.IntN(4) == 0 {
					p.state = pktLost
				}
			} else if p.state == pktLost && rng.IntN(2) == 0 {
				p.state = pktAcked // a late acknowledgement
			}
		case op < 8: // retire settled packets at the front
			for r.n > 1 && r.get(r.base).state != pktOutstanding && rng.IntN(3) > 0 {
				r.popFront()
			}
		default: // query
			pn := r.base + uint64(rng.IntN(r.n))
			p := r.get(pn)
			lo := r.base + uint64(rng.IntN(int(pn-r.base)+1))
			hi := pn + 1 + uint64(rng.IntN(int(r.base+uint64(r.n)-pn)))
			if p.state == pktAcked {
				want := uint64(0)
				for q := pn; q >= lo && r.get(q).state == pktAcked; q-- {
					want++
					if q == lo {
						break
					}
				}
				got := min(r.ackedBelow(pn, lo), pn-lo+1)
				if got != want {
					t.Fatalf("round %d: ackedBelow(%d, %d) = %d, want %d", round, pn, lo, got, want)
				}
			}
			if p.state != pktOutstanding {
				want := uint64(0)
				for q := pn; q < hi && r.get(q).state != pktOutstanding; q++ {
					want++
				}
				got := min(r.settledAbove(pn, hi), hi-pn)
				if got != want {
					t.Fatalf("round %d: settledAbove(%d, %d) = %d, want %d", round, pn, hi, got, want)
				}
			}
		}
	}
}
