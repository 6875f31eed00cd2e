// Package wire encodes and decodes every byte Haven puts on the network:
// the fixed 40-byte packet header, the messages inside a packet, the
// handshake message bodies, keys, peer ids and the address syntax.
//
// It is pure: no I/O, no clocks, no goroutines, standard library only.
// Parsers never panic on hostile input and never allocate; encoders append
// to a caller's buffer. docs/PROTOCOL.md is the normative description; the
// tests check its worked examples byte for byte.
package wire

import (
	"crypto/sha256"
	"encoding/binary"
)

// ProtocolVersion and Construction name this implementation of the protocol
// suite. They are never negotiated: together they fix the header layout, the
// message set and the cryptography, and their hash is the ProtocolID that
// starts every packet (seed "Any Port in a Storm", "Feature Negotiation";
// the WireGuard model).
const (
	ProtocolVersion = "haven/1"
	Construction    = "Noise_IK_25519_ChaChaPoly_BLAKE2s"
)

// ProtocolID is the first 8 bytes of every packet:
// SHA-256(ProtocolVersion || 0x00 || Construction)[0:8].
// A packet that does not start with it is dropped without reply.
var ProtocolID = computeProtocolID(ProtocolVersion, Construction)

// protocolIDWord is ProtocolID as the little-endian word the header holds,
// so the hot-path check is one 64-bit compare.
var protocolIDWord = binary.LittleEndian.Uint64(ProtocolID[:])

// ConstructionAESGCM is the second construction of haven/1, specified in
// docs/PROTOCOL.md §2.1: the same header, messages and handshake, with
// AES-256-GCM as the AEAD (Noise's AESGCM cipher functions) for hardware
// where AES is about twice as fast as ChaCha20-Poly1305. It has its own
// protocol id, ProtocolIDAESGCM, and is never negotiated: a dialer picks
// one for a session (Suite), a listener answers in the one it is spoken to.
const ConstructionAESGCM = "Noise_IK_25519_AESGCM_BLAKE2s"

// ProtocolIDAESGCM is the protocol id of ConstructionAESGCM:
// SHA-256(ProtocolVersion || 0x00 || ConstructionAESGCM)[0:8].
var ProtocolIDAESGCM = computeProtocolID(ProtocolVersion, ConstructionAESGCM)

// protocolIDWordAESGCM is ProtocolIDAESGCM as a little-endian word.
var protocolIDWordAESGCM = binary.LittleEndian.Uint64(ProtocolIDAESGCM[:])

// Suite names one of the constructions of haven/1 (PROTOCOL.md §2, §2.1):
// which protocol id a packet starts with, and so which AEAD seals it. The
// zero value is SuiteChaChaPoly, the first construction. A session speaks
// one suite from its first packet to its last.
type Suite uint8

const (
	// SuiteChaChaPoly is Noise_IK_25519_ChaChaPoly_BLAKE2s (ProtocolID).
	SuiteChaChaPoly Suite = iota
	// SuiteAESGCM is Noise_IK_25519_AESGCM_BLAKE2s (ProtocolIDAESGCM).
	SuiteAESGCM

	// NumSuites is the number of suites; valid suites are below it.
	NumSuites = 2
)

// Valid reports whether s is a known suite.
func (s Suite) Valid() bool { return s < NumSuites }

// ProtocolID returns the suite's protocol id, the first 8 bytes of each of
// its packets. An unknown suite has the first one's.
func (s Suite) ProtocolID() [8]byte {
	if s == SuiteAESGCM {
		return ProtocolIDAESGCM
	}
	return ProtocolID
}

// Construction returns the suite's Noise protocol name.
func (s Suite) Construction() string {
	if s == SuiteAESGCM {
		return ConstructionAESGCM
	}
	return Construction
}

// String returns the suite's AEAD, as users name it.
func (s Suite) String() string {
	switch s {
	case SuiteChaChaPoly:
		return "ChaCha20-Poly1305"
	case SuiteAESGCM:
		return "AES-256-GCM"
	}
	return "unknown suite"
}

// ProtocolIDs holds each suite's protocol id, indexed by Suite: slices of
// it are the Noise prologues of the suites' handshakes, with no copy.
var ProtocolIDs = [NumSuites][8]byte{SuiteChaChaPoly: ProtocolID, SuiteAESGCM: ProtocolIDAESGCM}

// IDWord returns the suite's protocol id as the header's little-endian
// word (one 64-bit store or compare on the packet path).
func (s Suite) IDWord() uint64 {
	if s == SuiteAESGCM {
		return protocolIDWordAESGCM
	}
	return protocolIDWord
}

// SuiteOf returns the suite whose protocol id starts b, and false if b
// starts with neither (or is shorter than 8 bytes).
func SuiteOf(b []byte) (Suite, bool) {
	if len(b) < 8 {
		return 0, false
	}
	switch binary.LittleEndian.Uint64(b) {
	case protocolIDWord:
		return SuiteChaChaPoly, true
	case protocolIDWordAESGCM:
		return SuiteAESGCM, true
	}
	return 0, false
}

func computeProtocolID(version, construction string) [8]byte {
	h := sha256.New()
	h.Write([]byte(version))
	h.Write([]byte{0})
	h.Write([]byte(construction))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var id [8]byte
	copy(id[:], sum[:8])
	return id
}
