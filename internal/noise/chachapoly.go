package noise

import (
	"encoding/binary"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305"
)

// ChaCha20-Poly1305 without an AEAD object, for handshake keys.
//
// chacha20poly1305.New copies the key into a heap object, worth keeping for
// a transport key that seals thousands of packets but not for a handshake
// key that seals or opens one or two short messages. These functions build
// the AEAD of RFC 8439 §2.8 from its two parts, with the ChaCha20 and
// Poly1305 states on the stack: the one-time Poly1305 key is the first 32
// bytes of the ChaCha20 block with counter 0 (§2.6), the message is
// encrypted from counter 1, and the tag covers
//
//	aad || pad16(aad) || ciphertext || pad16(ciphertext) || le64(len(aad)) || le64(len(ciphertext))
//
// Noise's nonce for ChaChaPoly is 32 zero bits, then the 64-bit counter n
// little-endian (§12.3; chachaNonce). TestChaChaPoly checks the result
// against RFC 8439 §2.8.2 and against chacha20poly1305.

// chachaNonce returns the 96-bit nonce for the Noise counter n.
func chachaNonce(n uint64) [chacha20.NonceSize]byte {
	var nonce [chacha20.NonceSize]byte
	binary.LittleEndian.PutUint64(nonce[4:], n)
	return nonce
}

// errChaCha reports a ChaCha20 setup failure, which the key and nonce
// types rule out.
const errChaCha = "noise: chacha20 refused a 32-byte key and 12-byte nonce"

// polyKey sets k to the one-time Poly1305 key, the first 32 bytes of block
// 0, and moves s to block 1 for the message (RFC 8439 §2.6, §2.8).
func polyKey(s *chacha20.Cipher, k *[32]byte) {
	*k = [32]byte{}
	s.XORKeyStream(k[:], k[:])
	s.SetCounter(1)
}

// zeroPad holds the zero bytes that pad the MAC input to 16-byte blocks.
var zeroPad [16]byte

// chachaPolyMAC feeds the RFC 8439 §2.8 MAC input for ad and ciphertext to m.
func chachaPolyMAC(m *poly1305.MAC, ad, ciphertext []byte) {
	m.Write(ad)
	m.Write(zeroPad[:(16-len(ad)%16)%16])
	m.Write(ciphertext)
	m.Write(zeroPad[:(16-len(ciphertext)%16)%16])
	var lens [16]byte
	binary.LittleEndian.PutUint64(lens[:8], uint64(len(ad)))
	binary.LittleEndian.PutUint64(lens[8:], uint64(len(ciphertext)))
	m.Write(lens[:])
}

// chachaPolySeal appends the ChaCha20-Poly1305 encryption of plaintext
// with additional data ad under key and nonce, then the 16-byte tag, to
// dst. As for cipher.AEAD, dst may be plaintext[:0] with room for the tag,
// and must not overlap plaintext otherwise.
func chachaPolySeal(dst []byte, key *[KeyLen]byte, nonce *[chacha20.NonceSize]byte, ad, plaintext []byte) []byte {
	ret, out := sliceForAppend(dst, len(plaintext)+TagLen)
	ct := out[:len(plaintext)]
	// The ChaCha20 state is made here, not in a helper, so that it stays
	// on the stack (NewUnauthenticatedCipher is inlined).
	s, err := chacha20.NewUnauthenticatedCipher(key[:], nonce[:])
	if err != nil {
		panic(errChaCha)
	}
	var pk [32]byte
	polyKey(s, &pk)
	s.XORKeyStream(ct, plaintext)
	m := poly1305.New(&pk)
	chachaPolyMAC(m, ad, ct)
	m.Sum(out[len(plaintext):len(plaintext)])
	clear(pk[:])
	return ret
}

// chachaPolyOpen checks the tag at the end of ciphertext (with additional
// data ad, under key and nonce) in constant time and, if it is valid,
// appends the plaintext to dst. It reports false, and writes nothing, for a
// forged or short ciphertext. dst may be ciphertext[:0] and must not
// overlap ciphertext otherwise.
func chachaPolyOpen(dst []byte, key *[KeyLen]byte, nonce *[chacha20.NonceSize]byte, ad, ciphertext []byte) ([]byte, bool) {
	if len(ciphertext) < TagLen {
		return nil, false
	}
	tag := ciphertext[len(ciphertext)-TagLen:]
	ciphertext = ciphertext[:len(ciphertext)-TagLen]
	// The ChaCha20 state is made here, not in a helper, so that it stays
	// on the stack (NewUnauthenticatedCipher is inlined).
	s, err := chacha20.NewUnauthenticatedCipher(key[:], nonce[:])
	if err != nil {
		panic(errChaCha)
	}
	var pk [32]byte
	polyKey(s, &pk)
	m := poly1305.New(&pk)
	chachaPolyMAC(m, ad, ciphertext)
	ok := m.Verify(tag) // subtle.ConstantTimeCompare
	clear(pk[:])
	if !ok {
		return nil, false
	}
	ret, out := sliceForAppend(dst, len(ciphertext))
	s.XORKeyStream(out, ciphertext)
	return ret, true
}

// sliceForAppend extends in by n bytes, reallocating if its capacity is too
// small, and returns the whole slice and the n new bytes.
func sliceForAppend(in []byte, n int) (whole, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		whole = in[:total]
	} else {
		whole = make([]byte, total)
		copy(whole, in)
	}
	return whole, whole[len(in):]
}
