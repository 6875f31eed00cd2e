package noise

import "hash"

// SymmetricState is the §5.2 object: the chaining key ck, the handshake
// hash h and a CipherState. It is built by [NewSymmetricState]
// (InitializeSymmetric) and driven by a [HandshakeState]; it is exported
// so its primitives can be tested and reused on their own. Its zero value
// is not usable.
//
// Every hash, HMAC and HKDF runs on one hash state owned by the
// SymmetricState and reset before each use, with fixed arrays for all
// intermediate values, so the handshake allocates nothing for hashing.
type SymmetricState struct {
	cs CipherState
	hf *hashFunc
	hh hash.Hash // scratch hash state; reset before every use

	ck [maxHashLen]byte // chaining key, hf.hashLen bytes used
	h  [maxHashLen]byte // handshake hash, hf.hashLen bytes used

	nextH [maxHashLen]byte // h after DecryptAndHash, committed on success

	// Scratch for HMAC and HKDF (§4.3); cleared after each use.
	pad        [maxBlockLen]byte
	inner      [maxHashLen]byte
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
	s.hh = suite.hash.new()
	s.cs = newCipherState(suite.cipher)
	n := s.hf.hashLen
	if len(protocolName) <= n {
		clear(s.h[:])
		copy(s.h[:], protocolName)
	} else {
		s.hh.Reset()
		s.hh.Write(protocolName)
		s.hh.Sum(s.h[:0])
	}
	s.ck = s.h
}

// MixHash sets h = HASH(h || data) (§5.2).
func (s *SymmetricState) MixHash(data []byte) {
	n := s.hf.hashLen
	s.hh.Reset()
	s.hh.Write(s.h[:n])
	s.hh.Write(data)
	s.hh.Sum(s.h[:0])
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
	s.hh.Reset()
	s.hh.Write(s.h[:n])
	s.hh.Write(ciphertext)
	s.hh.Sum(s.nextH[:0])
	out, err := s.cs.DecryptWithAd(dst, s.h[:n], ciphertext)
	if err != nil {
		return nil, err
	}
	s.h = s.nextH
	return out, nil
}

// Split returns c1 (initiator to responder) and c2 (responder to
// initiator) keyed from temp_k1, temp_k2 = HKDF(ck, zerolen, 2), each
// truncated to 32 bytes (§5.2).
func (s *SymmetricState) Split() (c1, c2 *CipherState, err error) {
	s.hkdf(nil, 2)
	defer s.clearScratch()
	c1 = &CipherState{cf: s.cs.cf}
	c2 = &CipherState{cf: s.cs.cf}
	if err := c1.InitializeKey(s.o1[:KeyLen]); err != nil {
		return nil, nil, err
	}
	if err := c2.InitializeKey(s.o2[:KeyLen]); err != nil {
		return nil, nil, err
	}
	return c1, c2, nil
}

// hmac sets out = HMAC-HASH(key, data1 || data2) per RFC 2104 (§4.3).
// key is at most HASHLEN <= BLOCKLEN bytes, so it is never pre-hashed.
// out may alias key or the data: it is written last.
func (s *SymmetricState) hmac(out, key, data1, data2 []byte) {
	bl, n := s.hf.blockLen, s.hf.hashLen
	pad := s.pad[:bl]
	for i := range pad {
		pad[i] = 0x36
	}
	for i, b := range key {
		pad[i] ^= b
	}
	s.hh.Reset()
	s.hh.Write(pad)
	s.hh.Write(data1)
	s.hh.Write(data2)
	s.hh.Sum(s.inner[:0])
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	s.hh.Reset()
	s.hh.Write(pad)
	s.hh.Write(s.inner[:n])
	s.hh.Sum(out[:0])
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
	s.hmac(tk, s.ck[:n], ikm, nil)
	s.hmac(s.o1[:n], tk, hkdfInfo[1:2], nil)
	s.hmac(s.o2[:n], tk, s.o1[:n], hkdfInfo[2:3])
	if num == 3 {
		s.hmac(s.o3[:n], tk, s.o2[:n], hkdfInfo[3:4])
	}
}

func (s *SymmetricState) clearScratch() {
	clear(s.pad[:])
	clear(s.inner[:])
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
