package secure

import "github.com/havenproto/haven/wire"

// cryptoHeader copies the 40-byte header at the start of pkt into dst with
// the payload length field (wire.OffLength, 2 bytes) set to zero, and
// returns it. This is the form in which a header enters every
// cryptographic computation of the package: the transport AEAD's
// associated data, mac1 and mac2, and the handshake transcript. The length
// field is excluded because only stream transports set it (PROTOCOL.md §8):
// a packet's cryptography is then the same on every transport, and a
// stream transport can set or clear the field without touching anything
// else. Checking the field against the transport is the socket layer's job.
//
// dst must live in a heap object that outlives the call (a field of the
// Transport, Initiator, keyedMAC or respWork using it): the copy is handed
// to hash and AEAD implementations through interfaces, so a local array
// would escape and cost an allocation per packet.
func cryptoHeader(dst *[wire.HeaderLen]byte, pkt []byte) []byte {
	copy(dst[:], pkt[:wire.HeaderLen])
	dst[wire.OffLength], dst[wire.OffLength+1] = 0, 0
	return dst[:]
}

// prologue returns the Noise prologue of suite s's handshakes: its
// protocol id (PROTOCOL.md §7.1), so that a handshake of one construction
// can never complete as the other's.
func prologue(s wire.Suite) []byte { return wire.ProtocolIDs[s][:] }
