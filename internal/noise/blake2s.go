package noise

import "golang.org/x/crypto/blake2s"

// BLAKE2s hashing without a hash state.
//
// A streaming hash.Hash from blake2s.New256 is a heap object, and inputs
// handed to it through the interface escape to the heap too. Every BLAKE2s
// input of a Noise handshake is short (HASHLEN plus a key, a tag-sized
// ciphertext or a packet header; HMAC inputs are one 64-byte block plus at
// most 64 bytes), so these functions copy the input into a buffer on the
// stack and hash it with the one-shot blake2s.Sum256, which keeps nothing.
// Longer inputs, which only the exported SymmetricState methods can
// produce, are left to the streaming state (they report false).

// blake2sInline is the longest input blake2sHash takes: the 32-byte h and
// up to 224 bytes of data.
const blake2sInline = 256

// blake2sHash sets out[:32] = BLAKE2s-256(a || b) and reports true, or
// reports false, doing nothing, if the input is longer than blake2sInline.
func blake2sHash(out *[maxHashLen]byte, a, b []byte) bool {
	if len(a)+len(b) > blake2sInline {
		return false
	}
	var buf [blake2sInline]byte
	n := copy(buf[:], a)
	n += copy(buf[n:], b)
	sum := blake2s.Sum256(buf[:n])
	copy(out[:], sum[:])
	clear(buf[:n])
	return true
}

// hmacInline is the longest message hmacBLAKE2s takes.
const hmacInline = 64

// hmacBLAKE2s sets out[:32] = HMAC-BLAKE2s(key, d1 || d2) (RFC 2104, with
// BLAKE2s's 64-byte block; Noise §4.3) and reports true, or reports false,
// doing nothing, if the message is longer than hmacInline. key is at most
// 32 bytes (HASHLEN), so it is used as is, zero-padded to the block.
// out may alias key or the data: it is written last.
func hmacBLAKE2s(out *[maxHashLen]byte, key, d1, d2 []byte) bool {
	const block = blake2s.BlockSize
	if len(d1)+len(d2) > hmacInline || len(key) > blake2s.Size {
		return false
	}
	// inner = H((key ^ ipad) || message); out = H((key ^ opad) || inner)
	var buf [block + hmacInline]byte
	for i := range block {
		buf[i] = 0x36
	}
	for i, k := range key {
		buf[i] ^= k
	}
	n := block + copy(buf[block:], d1)
	n += copy(buf[n:], d2)
	inner := blake2s.Sum256(buf[:n])
	for i := range block {
		buf[i] ^= 0x36 ^ 0x5c
	}
	copy(buf[block:], inner[:])
	sum := blake2s.Sum256(buf[:block+blake2s.Size])
	copy(out[:], sum[:])
	clear(buf[:])
	clear(inner[:])
	clear(sum[:])
	return true
}
