package noise

import (
	"crypto/cipher"
	"encoding/binary"
	"math"
)

// CipherState is the §5.1 object: a cipher key k (possibly empty) and a
// 64-bit nonce n. After the handshake, [HandshakeState.Split] hands out one
// CipherState per direction for transport messages.
//
// Two ways to use it for transport:
//
//   - In order (the specification's model): EncryptWithAd and
//     DecryptWithAd use n and increment it.
//   - Out of order, as on a datagram network (§11.4): the sender reads the
//     counter with Nonce before EncryptWithAd and puts it on the wire; the
//     receiver decrypts with DecryptAt using that counter, guarded by a
//     [ReplayWindow]. DecryptAt does not touch n.
//
// Nothing here allocates: ciphertext and plaintext are appended to dst. To
// work in place, pass plaintext[:0] (or ciphertext[:0]) as dst, with enough
// capacity for the TagLen-byte tag when sealing; any other overlap between
// dst and the input is not allowed (the crypto/cipher.AEAD rules).
//
// The zero value is an empty CipherState for ChaChaPoly (Haven's cipher).
// Do not copy a keyed CipherState, since two copies would reuse nonces;
// moving one (copying it, then overwriting the original with the zero
// value) is fine.
//
// A CipherState is not safe for concurrent use: the nonce is encoded in a
// buffer inside it. Give each goroutine its own, or serialise.
type CipherState struct {
	cf    *cipherFunc
	aead  cipher.AEAD // nil while k is empty, and for handshake keys (initializeKeyLazy)
	keyed bool        // k is non-empty
	k     [KeyLen]byte
	n     uint64
	nonce [12]byte // scratch for the encoded nonce (4 zero bytes || n)
	// scratch for Rekey: ENCRYPT(k, maxnonce, zerolen, zeros) is 32+16 bytes
	rekey [KeyLen + TagLen]byte
}

// newCipherState returns a CipherState with an empty key for suite cf.
func newCipherState(cf *cipherFunc) CipherState { return CipherState{cf: cf} }

// InitializeKey sets k = key and n = 0 (§5.1). key must be KeyLen bytes.
// A nil key empties k, after which encryption is the identity function.
// The AEAD is keyed at once, so the CipherState may then be shared by
// concurrent EncryptAt/SealAt calls (transport keys, concurrent.go).
func (c *CipherState) InitializeKey(key []byte) error {
	if err := c.initializeKeyLazy(key); err != nil || key == nil {
		return err
	}
	return c.keyAEAD()
}

// initializeKeyLazy is InitializeKey without making the AEAD object, for
// the handshake's SymmetricState, whose keys each seal or open at most a
// couple of short messages and are often replaced before any use (IK's ee,
// followed at once by se). With ChaChaPoly such a key never gets an object:
// EncryptWithAd and DecryptWithAd run the AEAD on the stack
// (chachapoly.go). Other ciphers make theirs on first use. For sequential
// use only.
func (c *CipherState) initializeKeyLazy(key []byte) error {
	c.n = 0
	c.aead = nil
	if key == nil {
		c.keyed = false
		clear(c.k[:])
		return nil
	}
	if len(key) != KeyLen {
		return ErrConfig
	}
	if c.cf == nil {
		c.cf = cipherChaChaPoly
	}
	copy(c.k[:], key)
	c.keyed = true
	return nil
}

// keyAEAD makes the AEAD object for k if there is a key and none yet.
func (c *CipherState) keyAEAD() error {
	if c.aead != nil || !c.keyed {
		return nil
	}
	aead, err := c.cf.newAEAD(c.k[:])
	if err != nil {
		c.keyed = false
		clear(c.k[:])
		return err
	}
	c.aead = aead
	return nil
}

// HasKey reports whether k is non-empty (§5.1).
func (c *CipherState) HasKey() bool { return c.keyed }

// Nonce returns n, the counter the next EncryptWithAd or DecryptWithAd
// will use.
func (c *CipherState) Nonce() uint64 { return c.n }

// SetNonce sets n (§5.1), e.g. when resuming a counter.
func (c *CipherState) SetNonce(n uint64) { c.n = n }

// encodeNonce builds the 96-bit AEAD nonce: 32 zero bits followed by n,
// little-endian for ChaChaPoly (§12.3), big-endian for AESGCM (§12.4).
func (c *CipherState) encodeNonce(n uint64) []byte {
	if c.cf.bigEndianNonce {
		binary.BigEndian.PutUint64(c.nonce[4:], n)
	} else {
		binary.LittleEndian.PutUint64(c.nonce[4:], n)
	}
	return c.nonce[:]
}

// EncryptWithAd appends ENCRYPT(k, n++, ad, plaintext) to dst (§5.1). With
// an empty key it appends plaintext unchanged. n = 2^64-1 is reserved, so
// once n reaches it every call fails with ErrNonceExhausted.
func (c *CipherState) EncryptWithAd(dst, ad, plaintext []byte) ([]byte, error) {
	if !c.keyed {
		return append(dst, plaintext...), nil
	}
	if c.n == math.MaxUint64 {
		return nil, ErrNonceExhausted
	}
	var out []byte
	if c.stackAEAD() {
		nonce := chachaNonce(c.n)
		out = chachaPolySeal(dst, &c.k, &nonce, ad, plaintext)
	} else {
		if err := c.keyAEAD(); err != nil {
			return nil, err
		}
		out = c.aead.Seal(dst, c.encodeNonce(c.n), plaintext, ad)
	}
	c.n++
	return out, nil
}

// DecryptWithAd appends DECRYPT(k, n, ad, ciphertext) to dst and
// increments n (§5.1). With an empty key it appends ciphertext unchanged.
// On an authentication failure it returns ErrDecrypt and leaves n alone.
func (c *CipherState) DecryptWithAd(dst, ad, ciphertext []byte) ([]byte, error) {
	if !c.keyed {
		return append(dst, ciphertext...), nil
	}
	if c.n == math.MaxUint64 {
		return nil, ErrNonceExhausted
	}
	if !c.stackAEAD() {
		if err := c.keyAEAD(); err != nil {
			return nil, err
		}
	}
	out, err := c.open(dst, c.n, ad, ciphertext)
	if err != nil {
		return nil, err
	}
	c.n++
	return out, nil
}

// stackAEAD reports whether c is keyed for ChaChaPoly without an AEAD
// object: a handshake key (initializeKeyLazy), which runs the AEAD on the
// stack.
func (c *CipherState) stackAEAD() bool {
	return c.aead == nil && c.keyed && c.cf == cipherChaChaPoly
}

// EncryptAt is EncryptWithAd with an explicit nonce n; it leaves the
// internal counter alone. Reusing a nonce under one key destroys
// confidentiality, so only use it when the caller owns the counter.
// It fails with ErrNonceExhausted for n = 2^64-1 and ErrConfig without a
// key.
func (c *CipherState) EncryptAt(dst []byte, n uint64, ad, plaintext []byte) ([]byte, error) {
	if c.aead == nil {
		return nil, ErrConfig
	}
	if n == math.MaxUint64 {
		return nil, ErrNonceExhausted
	}
	return c.aead.Seal(dst, c.encodeNonce(n), plaintext, ad), nil
}

// DecryptAt decrypts a transport message sealed with the explicit nonce n
// (the counter carried in the packet; §11.4) and appends the plaintext to
// dst. It leaves the internal counter alone. Check n against a
// [ReplayWindow] before, and Accept it after, a successful DecryptAt.
func (c *CipherState) DecryptAt(dst []byte, n uint64, ad, ciphertext []byte) ([]byte, error) {
	if c.aead == nil {
		return nil, ErrConfig
	}
	if n == math.MaxUint64 {
		return nil, ErrNonceExhausted
	}
	return c.open(dst, n, ad, ciphertext)
}

func (c *CipherState) open(dst []byte, n uint64, ad, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < TagLen {
		return nil, ErrDecrypt
	}
	if c.aead == nil {
		nonce := chachaNonce(n)
		out, ok := chachaPolyOpen(dst, &c.k, &nonce, ad, ciphertext)
		if !ok {
			return nil, ErrDecrypt
		}
		return out, nil
	}
	out, err := c.aead.Open(dst, c.encodeNonce(n), ciphertext, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// zeroKey is the all-zero plaintext REKEY encrypts. Read-only.
var zeroKey [KeyLen]byte

// Rekey sets k = REKEY(k), the first 32 bytes of
// ENCRYPT(k, 2^64-1, zerolen, zeros) (§4.2, §5.1, §11.3). n is unchanged.
func (c *CipherState) Rekey() error {
	if err := c.keyAEAD(); err != nil {
		return err
	}
	if c.aead == nil {
		return ErrConfig
	}
	out := c.aead.Seal(c.rekey[:0], c.encodeNonce(math.MaxUint64), zeroKey[:], nil)
	n := c.n
	err := c.InitializeKey(out[:KeyLen])
	c.n = n
	clear(c.rekey[:])
	return err
}

// Clear erases the key and empties the CipherState. The AEAD object that
// crypto/chacha20poly1305 keeps internally is dropped, not wiped: the Go
// libraries give no way to erase it.
func (c *CipherState) Clear() {
	clear(c.k[:])
	c.aead, c.keyed = nil, false
	c.n = 0
}
