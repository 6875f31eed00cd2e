package noise

import (
	"crypto/cipher"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"

	"github.com/havenproto/haven/internal/aesgcm"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// maxHashLen and maxBlockLen size the fixed arrays that hold hash outputs
// and HMAC pads for every supported hash (BLAKE2b and SHA-512: 64 and 128).
const (
	maxHashLen  = 64
	maxBlockLen = 128
)

// cipherFunc is one row of the cipher-function table (§4.2, §12.3, §12.4).
type cipherFunc struct {
	name string
	// newAEAD returns the AEAD for a KeyLen-byte key.
	newAEAD func(key []byte) (cipher.AEAD, error)
	// bigEndianNonce: AESGCM encodes n big-endian after 32 zero bits
	// (§12.4); ChaChaPoly encodes it little-endian (§12.3).
	bigEndianNonce bool
}

// hashFunc is one row of the hash-function table (§4.3, §12.5-§12.8).
type hashFunc struct {
	name     string
	hashLen  int // HASHLEN
	blockLen int // BLOCKLEN, the HMAC block size
	new      func() hash.Hash
}

var (
	cipherChaChaPoly = &cipherFunc{name: "ChaChaPoly", newAEAD: chacha20poly1305.New}
	cipherAESGCM     = &cipherFunc{name: "AESGCM", newAEAD: newAESGCM, bigEndianNonce: true}

	hashBLAKE2s = &hashFunc{name: "BLAKE2s", hashLen: 32, blockLen: 64, new: newBLAKE2s}
	hashBLAKE2b = &hashFunc{name: "BLAKE2b", hashLen: 64, blockLen: 128, new: newBLAKE2b}
	hashSHA256  = &hashFunc{name: "SHA256", hashLen: 32, blockLen: 64, new: sha256.New}
	hashSHA512  = &hashFunc{name: "SHA512", hashLen: 64, blockLen: 128, new: sha512.New}
)

// newAESGCM is Noise's AESGCM (§12.4) for a 32-byte key: AES-256-GCM from
// internal/aesgcm, which runs four blocks per instruction on CPUs with
// VAES and VPCLMULQDQ and is crypto/cipher's elsewhere.
func newAESGCM(key []byte) (cipher.AEAD, error) { return aesgcm.New(key) }

func newBLAKE2s() hash.Hash {
	h, err := blake2s.New256(nil)
	if err != nil { // only for an over-long key; nil is not one
		panic("noise: blake2s.New256(nil): " + err.Error())
	}
	return h
}

func newBLAKE2b() hash.Hash {
	h, err := blake2b.New512(nil)
	if err != nil { // only for an over-long key; nil is not one
		panic("noise: blake2b.New512(nil): " + err.Error())
	}
	return h
}

// Suite is a choice of cipher and hash functions over X25519: the
// "25519_ChaChaPoly_BLAKE2s" part of a protocol name (§8).
//
// Haven never negotiates a suite: production code leaves Config.Suite nil
// and gets [DefaultSuite]. The other suites exist so that the one pattern
// implementation can be checked against the public test vectors. Suites
// are immutable and compared by pointer.
type Suite struct {
	cipher *cipherFunc
	hash   *hashFunc
	name   string // "25519_<cipher>_<hash>"
	// Full protocol names, precomputed as bytes for InitializeSymmetric.
	nameIK, nameIKpsk2 []byte
	// h (= ck) after InitializeSymmetric of each name: a handshake starts
	// from these instead of hashing its protocol name.
	h0IK, h0IKpsk2 [maxHashLen]byte
}

// suites holds every supported combination; DefaultSuite is suites[0].
var suites = func() []*Suite {
	var out []*Suite
	for _, c := range []*cipherFunc{cipherChaChaPoly, cipherAESGCM} {
		for _, h := range []*hashFunc{hashBLAKE2s, hashBLAKE2b, hashSHA256, hashSHA512} {
			name := "25519_" + c.name + "_" + h.name
			s := &Suite{
				cipher:     c,
				hash:       h,
				name:       name,
				nameIK:     []byte("Noise_IK_" + name),
				nameIKpsk2: []byte("Noise_IKpsk2_" + name),
			}
			var ss SymmetricState
			ss.init(s, s.nameIK)
			s.h0IK = ss.h
			ss.init(s, s.nameIKpsk2)
			s.h0IKpsk2 = ss.h
			out = append(out, s)
		}
	}
	return out
}()

// DefaultSuite is Haven's construction: 25519_ChaChaPoly_BLAKE2s, i.e.
// Noise_IK_25519_ChaChaPoly_BLAKE2s (wire.Construction).
var DefaultSuite = suites[0]

// NewCipherState returns an empty CipherState of the suite's cipher, for
// InitializeKey.
func (s *Suite) NewCipherState() CipherState { return newCipherState(s.cipher) }

// Name returns the suite's part of a protocol name, e.g.
// "25519_ChaChaPoly_BLAKE2s".
func (s *Suite) Name() string { return s.name }

// HashLen returns HASHLEN, the size of the handshake hash: 32 for BLAKE2s
// and SHA256, 64 for BLAKE2b and SHA512.
func (s *Suite) HashLen() int { return s.hash.hashLen }

// ProtocolName returns the full Noise protocol name (§8) of an IK handshake
// over this suite, with the psk2 modifier if psk is true.
func (s *Suite) ProtocolName(psk bool) string {
	if psk {
		return string(s.nameIKpsk2)
	}
	return string(s.nameIK)
}

// LookupSuite returns the suite for the named cipher ("ChaChaPoly",
// "AESGCM") and hash ("BLAKE2s", "BLAKE2b", "SHA256", "SHA512") over 25519.
func LookupSuite(cipherName, hashName string) (*Suite, error) {
	for _, s := range suites {
		if s.cipher.name == cipherName && s.hash.name == hashName {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: cipher %q hash %q", ErrUnknownProtocol, cipherName, hashName)
}

// ParseProtocolName parses "Noise_IK_25519_<cipher>_<hash>" or
// "Noise_IKpsk2_25519_<cipher>_<hash>" (§8) into its suite and whether the
// psk2 modifier is present. Any other pattern, modifier or DH is refused.
func ParseProtocolName(name string) (suite *Suite, psk bool, err error) {
	parts := strings.Split(name, "_")
	if len(parts) != 5 || parts[0] != "Noise" || parts[2] != "25519" {
		return nil, false, fmt.Errorf("%w: %q", ErrUnknownProtocol, name)
	}
	switch parts[1] {
	case "IK":
	case "IKpsk2":
		psk = true
	default:
		return nil, false, fmt.Errorf("%w: pattern %q in %q", ErrUnknownProtocol, parts[1], name)
	}
	suite, err = LookupSuite(parts[3], parts[4])
	if err != nil {
		return nil, false, err
	}
	return suite, psk, nil
}
