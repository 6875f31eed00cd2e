package fec

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestField: α generates the field, and every element has its inverse.
func TestField(t *testing.T) {
	seen := map[byte]bool{}
	for i := 0; i < 255; i++ {
		seen[expTable[i]] = true
	}
	if len(seen) != 255 || seen[0] {
		t.Fatalf("α^i covers %d nonzero elements, want 255", len(seen))
	}
	for a := 1; a < 256; a++ {
		if mul(byte(a), inv(byte(a))) != 1 {
			t.Fatalf("%d·%d^-1 != 1", a, a)
		}
		for _, b := range []byte{0, 1, 2, 0x53, 0xca} {
			// Distributivity against XOR, the field's addition.
			if mul(byte(a), b^0x1d) != mul(byte(a), b)^mul(byte(a), 0x1d) {
				t.Fatalf("mul does not distribute over XOR at %d, %d", a, b)
			}
		}
	}
	if mul(0x80, 2) != 0x1d { // x^7 · x = x^8 = x^4+x^3+x^2+1 mod 0x11d
		t.Fatalf("0x80·2 = %#x, want 0x1d", mul(0x80, 2))
	}
}

// group makes k datagrams of random lengths up to maxLen.
func group(rng *rand.Rand, k, maxLen int) [][]byte {
	g := make([][]byte, k)
	for i := range g {
		g[i] = make([]byte, rng.IntN(maxLen+1))
		for j := range g[i] {
			g[i][j] = byte(rng.Uint32())
		}
	}
	return g
}

// encode returns the repair symbols of g.
func encode(g [][]byte, repairs int) [][]byte {
	var e Encoder
	e.Reset(repairs)
	for _, d := range g {
		e.Add(d)
	}
	out := make([][]byte, repairs)
	for r := range out {
		out[r] = bytes.Clone(e.Repair(r))
	}
	return out
}

// TestRecover: any e ≤ R lost datagrams of a group come back byte for
// byte from any e of its repair symbols (the code is MDS), for groups of
// every size, R from 1 to 16 and datagrams from empty to 1,400 bytes.
func TestRecover(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 3000; trial++ {
		k := 1 + rng.IntN(MaxGroup)
		repairs := 1 + rng.IntN(MaxRepairs)
		g := group(rng, k, []int{0, 3, 200, 1400}[trial%4])
		rep := encode(g, repairs)
		e := rng.IntN(min(repairs, k) + 1)
		got := make([][]byte, k)
		copy(got, g)
		for _, i := range rng.Perm(k)[:e] {
			got[i] = nil
		}
		keep := make([][]byte, repairs)
		for _, r := range rng.Perm(repairs)[:e+rng.IntN(repairs-e+1)] {
			keep[r] = rep[r]
		}
		n, err := Recover(got, keep)
		if err != nil || n != e {
			t.Fatalf("trial %d (K %d, R %d, %d lost): recovered %d, %v", trial, k, repairs, e, n, err)
		}
		for i := range g {
			if !bytes.Equal(got[i], g[i]) {
				t.Fatalf("trial %d (K %d, R %d): datagram %d recovered wrong", trial, k, repairs, i)
			}
		}
	}
}

// TestRecoverNotEnough: more lost datagrams than repair symbols received
// is ErrNotEnough, and nothing is made up.
func TestRecoverNotEnough(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	g := group(rng, 16, 100)
	rep := encode(g, 4)
	got := make([][]byte, 16)
	copy(got, g)
	got[1], got[5], got[9] = nil, nil, nil
	if n, err := Recover(got, [][]byte{rep[0], nil, rep[2], nil}); err != ErrNotEnough || n != 0 || got[1] != nil {
		t.Fatalf("3 lost, 2 repairs: %d, %v", n, err)
	}
	if _, err := Recover(got, [][]byte{rep[0], []byte{1, 2, 3}, rep[2], rep[3]}); err != ErrCorrupt {
		t.Fatalf("repair symbols of two sizes: %v", err)
	}
}

// TestParityIsXOR: with one repair symbol, it is the XOR of the group's
// symbols (length, then the bytes, zero-padded).
func TestParityIsXOR(t *testing.T) {
	g := [][]byte{{1, 2, 3}, {}, {0xff}}
	want := []byte{3 ^ 0 ^ 1, 0, 1 ^ 0xff, 2, 3}
	if got := encode(g, 1)[0]; !bytes.Equal(got, want) {
		t.Fatalf("parity % x, want % x", got, want)
	}
}

// TestEncoderAllocs: a warm Encoder allocates nothing per datagram.
func TestEncoderAllocs(t *testing.T) {
	var e Encoder
	d := make([]byte, 1200)
	e.Reset(8)
	for i := 0; i < MaxGroup; i++ {
		e.Add(d)
	}
	if n := testing.AllocsPerRun(100, func() {
		e.Reset(8)
		for i := 0; i < 8; i++ {
			e.Add(d)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per group", n)
	}
}

// FuzzRecover: hostile repair symbols and lengths never panic Recover,
// and a group it accepts from honest symbols is exact.
func FuzzRecover(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(3), uint8(2), uint8(1))
	f.Fuzz(func(t *testing.T, raw []byte, k, repairs, lost uint8) {
		kk, rr := 1+int(k)%MaxGroup, 1+int(repairs)%MaxRepairs
		data := make([][]byte, kk)
		for i := range data {
			if i < len(raw) {
				data[i] = raw[:i]
			} else {
				data[i] = []byte{}
			}
		}
		rep := make([][]byte, rr)
		for r := range rep {
			rep[r] = raw // arbitrary bytes as repair symbols
		}
		for i := 0; i < int(lost)%(kk+1); i++ {
			data[i] = nil
		}
		Recover(data, rep)
	})
}

func BenchmarkEncode(b *testing.B) {
	var e Encoder
	d := make([]byte, 1200)
	b.SetBytes(int64(len(d)))
	for i := 0; i < b.N; i++ {
		if i%MaxGroup == 0 {
			e.Reset(8)
		}
		e.Add(d)
	}
}
