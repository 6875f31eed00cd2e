package noise

import (
	"bytes"
	"crypto/rand"
	"fmt"
)

// KeyPair is an X25519 key pair, the DH key pair of §4.1 and §12.1.
//
// It holds the private key as given (RFC 7748 §5 clamps it at each use) and
// the public key computed from it, in fixed arrays: making, copying and
// using a key pair allocates nothing (x25519.go). A KeyPair is immutable
// once made and may be shared by any number of concurrent handshakes. The
// zero value is not a key pair; Config refuses it.
type KeyPair struct {
	priv [DHLen]byte
	pub  [DHLen]byte
	ok   bool
}

// NewKeyPair builds the key pair for a 32-byte X25519 private key. The
// usual clamping is applied by X25519 itself (RFC 7748 §5), so any 32
// bytes are a valid private key.
func NewKeyPair(private []byte) (*KeyPair, error) {
	kp := new(KeyPair)
	if err := kp.set(private); err != nil {
		return nil, err
	}
	return kp, nil
}

// KeyPairFrom is NewKeyPair returning the key pair by value, for callers
// that keep it inside an object of their own instead of allocating it.
func KeyPairFrom(private []byte) (KeyPair, error) {
	var kp KeyPair
	err := kp.set(private)
	return kp, err
}

// GenerateKeyPair returns a fresh key pair from crypto/rand
// (GENERATE_KEYPAIR, §4.1).
func GenerateKeyPair() (*KeyPair, error) {
	kp := new(KeyPair)
	if err := kp.generate(); err != nil {
		return nil, err
	}
	return kp, nil
}

func (kp *KeyPair) set(private []byte) error {
	if len(private) != DHLen {
		*kp = KeyPair{}
		return fmt.Errorf("%w: X25519 private key is %d bytes, want %d", ErrConfig, len(private), DHLen)
	}
	copy(kp.priv[:], private)
	x25519Base(&kp.pub, &kp.priv)
	kp.ok = true
	return nil
}

func (kp *KeyPair) generate() error {
	rand.Read(kp.priv[:]) // never fails (crypto/rand, Go 1.24+)
	x25519Base(&kp.pub, &kp.priv)
	kp.ok = true
	return nil
}

// PublicKey returns the 32-byte X25519 public key.
func (kp *KeyPair) PublicKey() [DHLen]byte { return kp.pub }

// PrivateKey returns a copy of the 32-byte private key, for storage.
func (kp *KeyPair) PrivateKey() []byte { return bytes.Clone(kp.priv[:]) }

// valid reports whether kp was made by NewKeyPair, KeyPairFrom or
// GenerateKeyPair.
func (kp *KeyPair) valid() bool { return kp != nil && kp.ok }

// dh computes DH(kp, pub) (§4.1) into out, with any 32-byte string as the
// peer's public key (RFC 7748 §5). It reports ErrLowOrderPoint, and leaves
// out all zero, when the output is all zeros, which happens exactly when
// pub is a low-order point (§12.1); Haven refuses such a DH (PROTOCOL.md
// §7.1), as crypto/ecdh does.
func dh(out *[DHLen]byte, kp *KeyPair, pub *[DHLen]byte) error {
	x25519(out, &kp.priv, pub)
	if isZero(out[:]) {
		return ErrLowOrderPoint
	}
	return nil
}
