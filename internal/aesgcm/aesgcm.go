// Package aesgcm is an AES-256-GCM AEAD (NIST SP 800-38D) for the
// packet sizes Haven seals: about 1,400 bytes under 40 bytes of
// associated data, with a 96-bit nonce and a 16-byte tag.
//
// Go's crypto/cipher seals such a packet at about 4.4 GB/s on the
// development machine: its assembly encrypts one 128-bit block per AES
// instruction. CPUs with VAES and VPCLMULQDQ (Intel Ice Lake and later,
// AMD Zen 4 and later) encrypt and hash four blocks per instruction in
// 512-bit registers; on them New returns this package's implementation,
// and elsewhere crypto/cipher's. Both produce the same bytes
// (TestDifferential), so the choice is invisible on the wire.
//
// The implementation is two assembly kernels (aesgcm_amd64.s): crypt, one
// pass over a message that encrypts 16 counter blocks per iteration and
// hashes the previous 16 between their AES rounds (GHASH aggregated with
// the powers H^16..H^1, one reduction per 16 blocks), and powers, which
// computes those powers for a new key. Partial blocks are loaded and
// stored with byte masks, so nothing is copied. The AES-256 key schedule
// is computed in Go (keys.go).
package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"unsafe"
)

const (
	// KeySize is the AES-256 key length.
	KeySize = 32
	// NonceSize is GCM's standard 96-bit nonce.
	NonceSize = 12
	// TagSize is GCM's full 128-bit tag.
	TagSize = 16

	rounds = 14 // AES-256
	// maxPlaintext is GCM's limit for a 96-bit nonce: 2^32-2 blocks
	// (SP 800-38D §5.2.1.1), since the 32-bit counter starts at 2.
	maxPlaintext = ((1 << 32) - 2) * 16
)

var errOpen = errors.New("aesgcm: message authentication failed")

// New returns an AES-256-GCM AEAD with a 12-byte nonce and a 16-byte tag
// for a 32-byte key: this package's when the CPU has the instructions it
// needs (Supported), crypto/cipher's otherwise.
func New(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, errors.New("aesgcm: key must be 32 bytes")
	}
	if !Supported {
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	return newGCM(key), nil
}

// gcm holds one key's expanded state. It is immutable after newGCM, so
// Seal and Open may run concurrently on any number of goroutines.
type gcm struct {
	rk [rounds + 1][16]byte // AES-256 round keys
	// ht holds the powers H^16..H^1 of the hash key (ht[0] is H^16,
	// ht[15] is H), each byte-reflected and multiplied by x^-1, the form
	// the GHASH kernel multiplies in; ht[16:] stays zero, so the kernel
	// may read a full 256 bytes from any ht[i], i <= 16.
	ht [32][16]byte
}

func newGCM(key []byte) *gcm {
	g := new(gcm)
	expandKey256(&g.rk, key)
	var h, zero [16]byte
	g.encryptBlock(&h, &zero) // H = E_K(0^128)
	// The reflected H as a 128-bit integer (bit i is the coefficient of
	// x^(127-i)), shifted left by one: H·x^-1 mod P.
	lo := binary.BigEndian.Uint64(h[8:])
	hi := binary.BigEndian.Uint64(h[:8])
	carry := hi >> 63
	hi = hi<<1 | lo>>63
	lo <<= 1
	if carry != 0 {
		hi ^= 0xc200000000000000
		lo ^= 1
	}
	binary.LittleEndian.PutUint64(g.ht[15][:8], lo)
	binary.LittleEndian.PutUint64(g.ht[15][8:], hi)
	powers(&g.ht)
	return g
}

func (g *gcm) NonceSize() int { return NonceSize }
func (g *gcm) Overhead() int  { return TagSize }

// Seal encrypts and authenticates plaintext with additionalData and
// appends the result to dst, as cipher.AEAD specifies: dst may be
// plaintext[:0], and otherwise must not overlap plaintext.
func (g *gcm) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != NonceSize {
		panic("aesgcm: incorrect nonce length given to GCM")
	}
	if uint64(len(plaintext)) > maxPlaintext {
		panic("aesgcm: message too large for GCM")
	}
	ret, out := sliceForAppend(dst, len(plaintext)+TagSize)
	checkOverlap(out, plaintext, additionalData)
	var j0, lens [16]byte
	setup(&j0, &lens, nonce, len(additionalData), len(plaintext))
	n := len(plaintext)
	crypt(&g.rk, &g.ht, &j0, unsafe.SliceData(out), unsafe.SliceData(plaintext), n,
		unsafe.SliceData(additionalData), len(additionalData), &lens, (*[16]byte)(out[n:]), 0)
	return ret
}

// Open authenticates and decrypts ciphertext with additionalData and
// appends the plaintext to dst, as cipher.AEAD specifies: dst may be
// ciphertext[:0], and otherwise must not overlap ciphertext. The tag is
// computed in the same pass as the plaintext; on failure Open clears the
// plaintext it wrote, as crypto/cipher does.
func (g *gcm) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		panic("aesgcm: incorrect nonce length given to GCM")
	}
	if len(ciphertext) < TagSize || uint64(len(ciphertext)) > maxPlaintext+TagSize {
		return nil, errOpen
	}
	n := len(ciphertext) - TagSize
	ret, out := sliceForAppend(dst, n)
	checkOverlap(out, ciphertext, additionalData)
	var j0, lens, want [16]byte
	setup(&j0, &lens, nonce, len(additionalData), n)
	crypt(&g.rk, &g.ht, &j0, unsafe.SliceData(out), unsafe.SliceData(ciphertext), n,
		unsafe.SliceData(additionalData), len(additionalData), &lens, &want, 1)
	if !tagEqual(&want, ciphertext[n:]) {
		clear(out) // no unauthenticated plaintext leaves Open
		return nil, errOpen
	}
	return ret, nil
}

// tagEqual reports whether b (TagSize bytes) equals want, in constant
// time: both are folded into one 64-bit difference, tested once. It does
// what subtle.ConstantTimeCompare does for 16 bytes, whose byte loop was
// 0.6 % of a bulk receiver's CPU.
func tagEqual(want *[TagSize]byte, b []byte) bool {
	_ = b[TagSize-1]
	d := binary.LittleEndian.Uint64(want[:8]) ^ binary.LittleEndian.Uint64(b[:8])
	d |= binary.LittleEndian.Uint64(want[8:]) ^ binary.LittleEndian.Uint64(b[8:TagSize])
	return d == 0
}

// setup fills in the pre-counter block J0 (nonce || 1, SP 800-38D §7.1)
// and GHASH's lengths block, both in bits.
func setup(j0, lens *[16]byte, nonce []byte, adLen, n int) {
	copy(j0[:], nonce)
	j0[15] = 1
	binary.BigEndian.PutUint64(lens[:8], uint64(adLen)*8)
	binary.BigEndian.PutUint64(lens[8:], uint64(n)*8)
}

// encryptBlock sets dst to E_K(src), one AES block, with crypt: the
// keystream of a single-block message is E_K(J0+1), so J0 is src minus
// one in its last 32 bits (the counter wraps as CTR's does). The hash it
// computes on the way is discarded, so it may run before ht is filled.
func (g *gcm) encryptBlock(dst, src *[16]byte) {
	var j0, zero, lens, tag [16]byte
	j0 = *src
	binary.BigEndian.PutUint32(j0[12:], binary.BigEndian.Uint32(src[12:])-1)
	crypt(&g.rk, &g.ht, &j0, &dst[0], &zero[0], 16, nil, 0, &lens, &tag, 0)
}

// sliceForAppend extends in by n bytes, reallocating if needed, and
// returns the whole slice and the n new bytes.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}

// checkOverlap panics, as crypto/cipher does, when the output shares
// memory with the input at any non-corresponding index (the same bytes at
// the same offsets are allowed: in place), or with the associated data.
func checkOverlap(out, in, ad []byte) {
	if inexactOverlap(out, in) {
		panic("aesgcm: invalid buffer overlap of output and input")
	}
	if inexactOverlap(out, ad) {
		panic("aesgcm: invalid buffer overlap of output and additional data")
	}
}

func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	return uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}
