package wire

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Peer id layout (seed "Any Port in a Storm"). A peer id has three parts:
// a routing part, empty in this protocol version; an authentication part
// derived from the peer's static public key (AuthTagOf); and an ephemeral
// part the owning peer chooses for each session, which lets one static key
// hold several sessions and lets a restarted peer be told from its old
// self. Packets are addressed by peer id, not by UDP address, so a session
// survives the peer's address changing.
const (
	// PeerIDLen is the size of a PeerID.
	PeerIDLen = 8
	// AuthTagLen is the size of an AuthTag.
	AuthTagLen = 4

	peerIDRoutingOffset   = 0 // routing part: zero length in haven/1
	peerIDRoutingLen      = 0
	peerIDAuthOffset      = peerIDRoutingOffset + peerIDRoutingLen // 4 bytes: AuthTag
	peerIDEphemeralOffset = peerIDAuthOffset + AuthTagLen          // 4 bytes: little-endian uint32
	peerIDEphemeralLen    = 4
)

// Compile-time check that the parts fill the id exactly.
var _ [PeerIDLen - (peerIDEphemeralOffset + peerIDEphemeralLen)]struct{}
var _ [(peerIDEphemeralOffset + peerIDEphemeralLen) - PeerIDLen]struct{}

// authTagLabel separates the auth tag hash from every other use of SHA-256
// in the protocol.
const authTagLabel = "haven peer id"

// AuthTag is the authentication part of a peer id: the first 4 bytes of a
// hash of the peer's static public key (AuthTagOf). It lets a receiver find
// the candidate static key for a packet before any cryptography; it is a
// hint, not a proof, and collisions between peers are expected and harmless.
type AuthTag [AuthTagLen]byte

// AuthTagOf returns the auth tag of a static public key:
//
//	SHA-256("haven peer id" || 0x00 || ProtocolID || pub)[0:4]
//
// ProtocolID is in the hash so that a peer's identity is tied to the
// protocol it speaks: the same key gives unrelated tags in another protocol
// version or construction.
func AuthTagOf(pub PublicKey) AuthTag { return AuthTagIn(ProtocolID, pub) }

// AuthTagIn is AuthTagOf under the protocol id id (ProtocolID or
// ProtocolIDAESGCM): the same key has unrelated tags under each.
// Suite.AuthTag is the same for a Suite.
func AuthTagIn(id [8]byte, pub PublicKey) AuthTag {
	// One fixed-size buffer: no allocation.
	var buf [len(authTagLabel) + 1 + len(id) + KeyLen]byte
	n := copy(buf[:], authTagLabel)
	buf[n] = 0
	n++
	n += copy(buf[n:], id[:])
	copy(buf[n:], pub[:])
	sum := sha256.Sum256(buf[:])
	var t AuthTag
	copy(t[:], sum[:AuthTagLen])
	return t
}

// AuthTag returns the auth tag of pub under the suite's protocol id.
func (s Suite) AuthTag(pub PublicKey) AuthTag { return AuthTagIn(s.ProtocolID(), pub) }

// String returns the tag as 8 lowercase hex digits, in byte order.
func (t AuthTag) String() string { return hex.EncodeToString(t[:]) }

// PeerID identifies one session of one peer. Bytes 0..3 are the AuthTag and
// bytes 4..7 the ephemeral part as a little-endian uint32.
//
// Ephemeral part 0 is reserved: it means "not yet assigned" and appears only
// as the destination's ephemeral part in a handshake initiation, when the
// initiator does not yet know the responder's choice.
type PeerID [PeerIDLen]byte

// MakePeerID returns the peer id with the given auth tag and ephemeral part.
func MakePeerID(auth AuthTag, ephemeral uint32) PeerID {
	var id PeerID
	copy(id[peerIDAuthOffset:peerIDAuthOffset+AuthTagLen], auth[:])
	binary.LittleEndian.PutUint32(id[peerIDEphemeralOffset:peerIDEphemeralOffset+peerIDEphemeralLen], ephemeral)
	return id
}

// Auth returns the id's authentication part.
func (id PeerID) Auth() AuthTag {
	var t AuthTag
	copy(t[:], id[peerIDAuthOffset:peerIDAuthOffset+AuthTagLen])
	return t
}

// Ephemeral returns the id's ephemeral part; 0 means not yet assigned.
func (id PeerID) Ephemeral() uint32 {
	return binary.LittleEndian.Uint32(id[peerIDEphemeralOffset : peerIDEphemeralOffset+peerIDEphemeralLen])
}

// IsZero reports whether id is all zero: no peer.
func (id PeerID) IsZero() bool { return id == PeerID{} }

// String returns "aaaaaaaa/eeeeeeee": the auth tag as 8 hex digits in byte
// order, a slash, and the ephemeral part as an 8-hex-digit number (so
// ephemeral 42 prints as 0000002a, not as its little-endian bytes).
func (id PeerID) String() string {
	const digits = "0123456789abcdef"
	var buf [2*AuthTagLen + 1 + 8]byte
	hex.Encode(buf[:2*AuthTagLen], id[peerIDAuthOffset:peerIDAuthOffset+AuthTagLen])
	buf[2*AuthTagLen] = '/'
	e := id.Ephemeral()
	for i := len(buf) - 1; i > 2*AuthTagLen; i-- {
		buf[i] = digits[e&0xf]
		e >>= 4
	}
	return string(buf[:])
}

// RandomEphemeral returns a random non-zero ephemeral part from crypto/rand.
func RandomEphemeral() (uint32, error) { return RandomEphemeralFrom(rand.Reader) }

// errZeroEphemerals is returned when a reader keeps producing zeros.
var errZeroEphemerals = errors.New("wire: random source returned only zero ephemeral values")

// RandomEphemeralFrom returns a non-zero ephemeral part read from r, four
// bytes at a time, skipping the reserved value 0. It gives up after a few
// zeros in a row, which a working random source all but never produces.
func RandomEphemeralFrom(r io.Reader) (uint32, error) {
	var buf [4]byte
	for range 8 {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return 0, fmt.Errorf("wire: reading random ephemeral: %w", err)
		}
		if e := binary.LittleEndian.Uint32(buf[:]); e != 0 {
			return e, nil
		}
	}
	return 0, errZeroEphemerals
}
