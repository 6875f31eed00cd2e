package aesgcm

import "sync"

// sbox is the AES S-box (FIPS 197 §5.1.1), computed on first use from its
// definition: the multiplicative inverse in GF(2^8) followed by the affine
// transformation.
var sbox = sync.OnceValue(func() *[256]byte {
	var s [256]byte
	for x := 0; x < 256; x++ {
		b := gfInv(byte(x))
		s[x] = b ^ rotl8(b, 1) ^ rotl8(b, 2) ^ rotl8(b, 3) ^ rotl8(b, 4) ^ 0x63
	}
	return &s
})

// gfMul multiplies in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
func gfMul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

// gfInv returns a^254, the inverse of a (and 0 for 0).
func gfInv(a byte) byte {
	r := byte(1)
	for e := 254; e > 0; e >>= 1 {
		if e&1 != 0 {
			r = gfMul(r, a)
		}
		a = gfMul(a, a)
	}
	return r
}

func rotl8(b byte, n uint) byte { return b<<n | b>>(8-n) }

// expandKey256 computes the 15 round keys of AES-256 (FIPS 197 §5.2)
// from a 32-byte key, as the bytes the round instructions take.
func expandKey256(rk *[rounds + 1][16]byte, key []byte) {
	s := sbox()
	var w [4 * (rounds + 1)][4]byte
	for i := 0; i < 8; i++ {
		copy(w[i][:], key[4*i:])
	}
	rcon := byte(1)
	for i := 8; i < len(w); i++ {
		t := w[i-1]
		switch i % 8 {
		case 0: // RotWord, SubWord, Rcon
			t = [4]byte{s[t[1]] ^ rcon, s[t[2]], s[t[3]], s[t[0]]}
			rcon = gfMul(rcon, 2)
		case 4: // SubWord
			t = [4]byte{s[t[0]], s[t[1]], s[t[2]], s[t[3]]}
		}
		for j := range t {
			w[i][j] = w[i-8][j] ^ t[j]
		}
	}
	for r := range rk {
		for c := 0; c < 4; c++ {
			copy(rk[r][4*c:], w[4*r+c][:])
		}
	}
}
