package noise

import "hash"

// SymmetricState is the §5.2 object: the chaining key ck, the handshake
// hash h and a CipherState. It is built by [NewSymmetricState]
// (InitializeSymmetric) and driven by a [HandshakeState]; it is exported
// so its primitives can be tested and reused on their own. Its zero value
// is not usable.
//
// For BLAKE2s (Haven's hash) every hash, HMAC and HKDF is a one-shot
// blake2s.Sum256 over a buffer on the stack (blake2s.go), so hashing
// allocates nothing. The other hashes, and BLAKE2s inputs too long for
// those buffers, go through one hash state owned by the SymmetricState,
// made on first use.
type SymmetricState struct {
	cs CipherState
	hf *hashFunc
	hh hash.Hash // streaming hash state, nil until needed; reset before every use

	ck [maxHashLen]byte // chaining key, hf.hashLen bytes used
	h  [maxHashLen]byte // handshake hash, hf.hashLen bytes used

	nextH [maxHashLen]byte // h after DecryptAndHash, committed on success

	// HKDF outputs (§4.3); cleared after each use.
	tempKey    [maxHashLen]byte
	o1, o2, o3 [maxHashLen]byte
}

// NewSymmetricState runs InitializeSymmetric(protocolName) (§5.2) for the
// suite: h is the name zero-padded to HASHLEN if it fits, else
// HASH(name); ck = h; k is empty.
func NewSymmetricState(suite *Suite, protocolName []byte) *SymmetricState {
	s := new(SymmetricState)
	s.init(suite, protocolName)
	return s
}

func (s *SymmetricState) init(suite *Suite, protocolName []byte) {
	s.hf = suite.hash
	s.cs = newCipherState(suite.cipher)
	if len(protocolName) <= s.hf.hashLen {
		clear(s.h[:])
		copy(s.h[:], protocolName)
	} else {
		s.hash(&s.h, protocolName, nil)
	}
	s.ck = s.h
}

// initHash starts the state from h0, the result of InitializeSymmetric for
// the protocol name (precomputed per Suite).
func (s *SymmetricState) initHash(suite *Suite, h0 *[maxHashLen]byte) {
	s.hf = suite.hash
	s.cs = newCipherState(suite.cipher)
	s.h, s.ck = *h0, *h0
}

// hash sets out = HASH(a || b).
func (s *SymmetricState) hash(out *[maxHashLen]byte, a, b []byte) {
	if s.hf == hashBLAKE2s && blake2sHash(out, a, b) {
		return
	}
	h := s.hasher()
	h.Write(a)
	h.Write(b)
	h.Sum(out[:0])
}

// hasher returns the streaming hash state, reset.
func (s *SymmetricState) hasher() hash.Hash {
	if s.hh == nil {
		s.hh = s.hf.new()
	}
	s.hh.Reset()
	return s.hh
}

// MixHash sets h = HASH(h || data) (§5.2).
func (s *SymmetricState) MixHash(data []byte) {
	s.hash(&s.h, s.h[:s.hf.hashLen], data)
}

// MixKey sets ck, temp_k = HKDF(ck, ikm, 2) and InitializeKey(temp_k),
// temp_k truncated to 32 bytes for 64-byte hashes (§5.2).
func (s *SymmetricState) MixKey(ikm []byte) error {
	n := s.hf.hashLen
	s.hkdf(ikm, 2)
	copy(s.ck[:n], s.o1[:n])
	err := s.cs.initializeKeyLazy(s.o2[:KeyLen]) // keyed on first use
	s.clearScratch()
	return err
}

// MixKeyAndHash sets ck, temp_h, temp_k = HKDF(ck, ikm, 3), then
// MixHash(temp_h) and InitializeKey(temp_k) (§5.2). Used for psk (§9.2).
func (s *SymmetricState) MixKeyAndHash(ikm []byte) error {
	n := s.hf.hashLen
	s.hkdf(ikm, 3)
	copy(s.ck[:n], s.o1[:n])
	s.MixHash(s.o2[:n])
	err := s.cs.initializeKeyLazy(s.o3[:KeyLen]) // keyed on first use
	s.clearScratch()
	return err
}

// GetHandshakeHash returns h (§5.2). The slice aliases the state and
// changes with it; copy it to keep it.
func (s *SymmetricState) GetHandshakeHash() []byte { return s.h[:s.hf.hashLen] }

// EncryptAndHash appends EncryptWithAd(h, plaintext) to dst, then mixes
// the ciphertext into h (§5.2). With an empty key the "ciphertext" is the
// plaintext.
func (s *SymmetricState) EncryptAndHash(dst, plaintext []byte) ([]byte, error) {
	start := len(dst)
	out, err := s.cs.EncryptWithAd(dst, s.h[:s.hf.hashLen], plaintext)
	if err != nil {
		return nil, err
	}
	s.MixHash(out[start:])
	return out, nil
}

// DecryptAndHash appends DecryptWithAd(h, ciphertext) to dst, then mixes
// the ciphertext into h (§5.2). On failure h and n are unchanged. The new
// h is computed before decrypting, so dst may be ciphertext[:0] (in-place
// decryption); any other overlap is not allowed.
func (s *SymmetricState) DecryptAndHash(dst, ciphertext []byte) ([]byte, error) {
	n := s.hf.hashLen
	s.hash(&s.nextH, s.h[:n], ciphertext)
	out, err := s.cs.DecryptWithAd(dst, s.h[:n], ciphertext)
	if err != nil {
		return nil, err
	}
	s.h = s.nextH
	return out, nil
}

// Split returns c1 (initiator to responder) and c2 (responder to
// initiator) keyed from temp_k1, temp_k2 = HKDF(ck, zerolen, 2), each
// truncated to 32 bytes (§5.2). Each has its AEAD object made at once, so
// it may be shared by concurrent EncryptAtWith calls.
func (s *SymmetricState) Split() (c1, c2 *CipherState, err error) {
	c1, c2 = new(CipherState), new(CipherState)
	if err := s.splitInto(c1, c2); err != nil {
		return nil, nil, err
	}
	return c1, c2, nil
}

// splitInto is Split into the caller's CipherStates.
func (s *SymmetricState) splitInto(c1, c2 *CipherState) error {
	s.hkdf(nil, 2)
	defer s.clearScratch()
	*c1 = CipherState{cf: s.cs.cf}
	*c2 = CipherState{cf: s.cs.cf}
	if err := c1.InitializeKey(s.o1[:KeyLen]); err != nil {
		return err
	}
	return c2.InitializeKey(s.o2[:KeyLen])
}

// hmac sets out = HMAC-HASH(key, data1 || data2) per RFC 2104 (§4.3).
// key is at most HASHLEN <= BLOCKLEN bytes, so it is never pre-hashed.
// out may alias key or the data: it is written last.
func (s *SymmetricState) hmac(out *[maxHashLen]byte, key, data1, data2 []byte) {
	if s.hf == hashBLAKE2s && hmacBLAKE2s(out, key, data1, data2) {
		return
	}
	s.hmacStream(out, key, data1, data2)
}

// hmacStream is hmac through the streaming hash state.
func (s *SymmetricState) hmacStream(out *[maxHashLen]byte, key, data1, data2 []byte) {
	bl, n := s.hf.blockLen, s.hf.hashLen
	var pad [maxBlockLen]byte
	var inner [maxHashLen]byte
	for i := range pad[:bl] {
		pad[i] = 0x36
	}
	for i, b := range key {
		pad[i] ^= b
	}
	h := s.hasher()
	h.Write(pad[:bl])
	h.Write(data1)
	h.Write(data2)
	h.Sum(inner[:0])
	for i := range pad[:bl] {
		pad[i] ^= 0x36 ^ 0x5c
	}
	h.Reset()
	h.Write(pad[:bl])
	h.Write(inner[:n])
	h.Sum(out[:0])
	clear(pad[:])
	clear(inner[:])
}

// hkdfInfo holds the single-byte counters 0x01..0x03 that HKDF appends.
// Read-only; a package variable so that hashing it allocates nothing.
var hkdfInfo = [4]byte{0, 1, 2, 3}

// hkdf is HKDF(ck, ikm, num) of §4.3 into o1, o2 and (num = 3) o3:
//
//	temp_key = HMAC(ck, ikm)
//	o1 = HMAC(temp_key, 0x01)
//	o2 = HMAC(temp_key, o1 || 0x02)
//	o3 = HMAC(temp_key, o2 || 0x03)
func (s *SymmetricState) hkdf(ikm []byte, num int) {
	n := s.hf.hashLen
	tk := s.tempKey[:n]
	s.hmac(&s.tempKey, s.ck[:n], ikm, nil)
	s.hmac(&s.o1, tk, hkdfInfo[1:2], nil)
	s.hmac(&s.o2, tk, s.o1[:n], hkdfInfo[2:3])
	if num == 3 {
		s.hmac(&s.o3, tk, s.o2[:n], hkdfInfo[3:4])
	}
}

func (s *SymmetricState) clearScratch() {
	clear(s.tempKey[:])
	clear(s.o1[:])
	clear(s.o2[:])
	clear(s.o3[:])
}

// erase wipes the chaining key and the cipher key (the handshake hash is
// public and kept for channel binding).
func (s *SymmetricState) erase() {
	clear(s.ck[:])
	s.cs.Clear()
	s.clearScratch()
}
