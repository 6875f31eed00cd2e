// Package noise is Haven's Noise Protocol Framework core: the IK handshake
// of Noise_IK_25519_ChaChaPoly_BLAKE2s, the transport CipherStates it
// yields, and the sliding replay window that guards those transport
// counters on an unordered datagram network.
//
// The construction is fixed, never negotiated (the WireGuard model). The
// code is nevertheless written against the abstract functions of the
// Noise specification (revision 34, §4): DH, cipher and hash functions come
// from a small table (see [Suite]) so that the same pattern logic can be
// checked against the public test vectors for all eight
// 25519_{ChaChaPoly,AESGCM}_{BLAKE2s,BLAKE2b,SHA256,SHA512} suites, with and
// without the psk2 modifier. Haven itself only ever uses [DefaultSuite].
//
// The objects follow the specification's processing rules (§5):
//
//   - [CipherState] (§5.1) holds k and n and encrypts transport messages.
//   - [SymmetricState] (§5.2) holds ck and h and runs MixKey, MixHash,
//     EncryptAndHash and friends, with HMAC and HKDF as in §4.3.
//   - [HandshakeState] (§5.3) runs the IK message patterns (§7.5)
//     <- s ... -> e, es, s, ss  <- e, ee, se, optionally with psk2 (§9).
//     Its MixHash method, an application extension, binds cleartext data
//     (Haven's packet headers) to the next message.
//   - [ReplayWindow] is an RFC 6479 sliding bitmap for the out-of-order
//     transport case the specification leaves to the application (§11.4).
//
// Cost model. Transport encryption and decryption never allocate: they
// append to (or seal in place into) the caller's buffer, and nonces are
// built in fixed arrays inside the CipherState. A handshake allocates its
// HandshakeState (none with InitInitiator or InitResponder on the caller's
// memory) and one AEAD object per transport key from Split, nothing else:
// X25519 runs on fixed arrays (x25519.go, RFC 7748 §5, over
// filippo.io/edwards25519/field, because crypto/ecdh allocates at every
// operation), BLAKE2s hashing, HMAC and HKDF are one-shot hashes of stack
// buffers (blake2s.go), the handshake keys' ChaCha20-Poly1305 runs on the
// stack (chachapoly.go, RFC 8439 §2.8), and Split's CipherStates live in
// the HandshakeState (or the caller's memory, with SplitInto). Suites
// other than Haven's, used only for the test vectors, allocate more.
//
// Errors are values: every failure on untrusted input (short, long or
// forged messages, low-order public keys) is reported as an error wrapping
// one of the sentinels below, never as a panic.
package noise

import "errors"

// Sentinel errors. Every error this package returns is, or wraps, one of
// these (or, rarely, a crypto library error); test with errors.Is.
var (
	// ErrShortMessage: a handshake message is shorter than its pattern
	// requires (public keys and authentication tags).
	ErrShortMessage = errors.New("noise: message too short")

	// ErrMessageTooLong: a Noise message would exceed 65535 bytes (§3).
	ErrMessageTooLong = errors.New("noise: message longer than 65535 bytes")

	// ErrDecrypt: AEAD authentication failed. The message was forged,
	// corrupted, or built with different keys, prologue or handshake hash.
	ErrDecrypt = errors.New("noise: message authentication failed")

	// ErrLowOrderPoint: an X25519 result was all zeros, which happens
	// exactly when the peer's public key is a low-order point. Such a DH
	// output contributes no secret; §12.1 allows signalling an error for it
	// and Haven does, so a peer cannot force a key-less session.
	ErrLowOrderPoint = errors.New("noise: X25519 output is all zeros (low-order public key)")

	// ErrNonceExhausted: the CipherState nonce reached 2^64-1, which the
	// specification reserves (§5.1); the session must be re-keyed.
	ErrNonceExhausted = errors.New("noise: nonce space exhausted")

	// ErrOutOfTurn: WriteMessage or ReadMessage was called when the pattern
	// expects the other one.
	ErrOutOfTurn = errors.New("noise: handshake message out of turn")

	// ErrHandshakeComplete: a handshake call after both messages were
	// processed.
	ErrHandshakeComplete = errors.New("noise: handshake already complete")

	// ErrHandshakeIncomplete: Split before both messages were processed.
	ErrHandshakeIncomplete = errors.New("noise: handshake not complete")

	// ErrAlreadySplit: Split called a second time; the chaining key is
	// erased by the first call.
	ErrAlreadySplit = errors.New("noise: handshake already split")

	// ErrConfig: an invalid Config or key.
	ErrConfig = errors.New("noise: invalid configuration")

	// ErrUnknownProtocol: ParseProtocolName or LookupSuite got a name this
	// package does not implement.
	ErrUnknownProtocol = errors.New("noise: unsupported protocol name")
)

// Sizes fixed by the specification for the 25519 DH and the two AEADs.
const (
	// DHLen is the length of X25519 public keys and DH outputs (§12.1).
	DHLen = 32
	// KeyLen is the cipher key length (§4.2).
	KeyLen = 32
	// TagLen is the AEAD authentication tag length (§4.2).
	TagLen = 16
	// PSKLen is the pre-shared key length (§9.1).
	PSKLen = 32
	// MaxMessageLen is the largest Noise message, handshake or transport (§3).
	MaxMessageLen = 65535
)
