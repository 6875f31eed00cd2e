package noise

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
)

// KeyPair is an X25519 key pair, the DH key pair of §4.1 and §12.1.
//
// The private scalar lives in a crypto/ecdh key object, built once, so
// that each DH costs one scalar multiplication (building the object from
// raw bytes costs a second one, for the public key). A static KeyPair is
// immutable and may be shared by any number of concurrent handshakes.
type KeyPair struct {
	priv *ecdh.PrivateKey
	pub  [DHLen]byte
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
		return fmt.Errorf("%w: X25519 private key is %d bytes, want %d", ErrConfig, len(private), DHLen)
	}
	priv, err := ecdh.X25519().NewPrivateKey(private)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	kp.priv = priv
	copy(kp.pub[:], priv.PublicKey().Bytes())
	return nil
}

func (kp *KeyPair) generate() error {
	var seed [DHLen]byte
	rand.Read(seed[:]) // never fails (crypto/rand, Go 1.24+)
	err := kp.set(seed[:])
	clear(seed[:])
	return err
}

// PublicKey returns the 32-byte X25519 public key.
func (kp *KeyPair) PublicKey() [DHLen]byte { return kp.pub }

// PrivateKey returns a copy of the 32-byte private key, for storage.
func (kp *KeyPair) PrivateKey() []byte { return kp.priv.Bytes() }

// valid reports whether kp was built by NewKeyPair or GenerateKeyPair.
func (kp *KeyPair) valid() bool { return kp != nil && kp.priv != nil }

// newPublicKey wraps a peer's 32-byte public key for DH. Every 32-byte
// string is accepted (RFC 7748 §5); low-order points are caught by dh.
func newPublicKey(pub *[DHLen]byte) (*ecdh.PublicKey, error) {
	k, err := ecdh.X25519().NewPublicKey(pub[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return k, nil
}

// dh computes DH(kp, pub) (§4.1) into out. crypto/ecdh refuses, and this
// reports as ErrLowOrderPoint, the all-zero output that a low-order public
// key produces; with both keys on X25519 that is the only way it fails.
func dh(out *[DHLen]byte, kp *KeyPair, pub *ecdh.PublicKey) error {
	shared, err := kp.priv.ECDH(pub)
	if err != nil {
		return ErrLowOrderPoint
	}
	copy(out[:], shared)
	clear(shared)
	return nil
}
