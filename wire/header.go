package wire

import (
	"encoding/binary"
	"errors"
)

// Packet header layout (docs/PROTOCOL.md §3). Every field sits at a fixed
// offset, naturally aligned; multi-byte fields are little-endian.
const (
	OffProtocolID   = 0  // 8 bytes: ProtocolID
	OffFlags        = 8  // 1 byte: Flags
	OffReserved     = 9  // 1 byte: zero
	OffLength       = 10 // 2 bytes: payload length, stream transports only
	OffChannel      = 12 // 4 bytes: channel id, 0 = handshake and session control
	OffDestination  = 16 // 8 bytes: destination PeerID
	OffSource       = 24 // 8 bytes: source PeerID
	OffPacketNumber = 32 // 8 bytes: packet number, the AEAD nonce counter
	HeaderLen       = 40 // the whole header; also the associated data

	// TagLen is the AEAD tag that ends every transport packet.
	TagLen = 16
	// Overhead is what a transport packet adds around its messages.
	Overhead = HeaderLen + TagLen

	// MinPacketSize is the smallest maximum packet size a peer may announce,
	// and the size every path must carry (as in RFC 9000 §14).
	MinPacketSize = 1200
	// MaxPacketSize is the largest packet: the largest IPv4 UDP payload.
	MaxPacketSize = 65507
	// DefaultPacketSize fits a 1500-byte Ethernet MTU under IPv6 and IPv4.
	DefaultPacketSize = 1452
)

// Flags is the header's flag byte. Bits not defined here must be zero.
type Flags uint8

const (
	// FlagHandshake marks a handshake packet: channel 0, packet number 0,
	// one cleartext handshake message, no transport AEAD.
	FlagHandshake Flags = 0x01
	// FlagKeyPhase selects which of the two current transport key sets
	// sealed the packet; it flips at every rekey.
	FlagKeyPhase Flags = 0x02
	// FlagSpin is the latency spin bit (RFC 9000 §17.4 semantics).
	FlagSpin Flags = 0x04

	flagsDefined = FlagHandshake | FlagKeyPhase | FlagSpin
)

// Header errors. Parsers return these sentinels, never allocate, never panic.
var (
	ErrShortPacket   = errors.New("wire: packet shorter than its header")
	ErrProtocolID    = errors.New("wire: packet of another protocol")
	ErrHeaderInvalid = errors.New("wire: reserved header bits set")
	ErrHandshakeForm = errors.New("wire: handshake packet with channel, packet number or transport flags")
)

// Header is the fixed 40-byte packet header. The protocol id is implied by
// Suite: Append writes the suite's id, Parse accepts either suite's and
// records which.
type Header struct {
	// Suite is the construction whose protocol id starts the packet.
	Suite Suite
	Flags Flags
	// Length is the number of bytes after the header (messages and tag). It is
	// carried only on stream transports, where it delimits packets; on
	// datagram transports it must be zero.
	Length       uint16
	Channel      uint32
	Destination  PeerID
	Source       PeerID
	PacketNumber uint64
}

// Len returns HeaderLen: the header never varies in size.
func (h *Header) Len() int { return HeaderLen }

// Append appends the header's 40 bytes to b.
func (h *Header) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, h.Suite.IDWord())
	b = append(b, byte(h.Flags), 0)
	b = binary.LittleEndian.AppendUint16(b, h.Length)
	b = binary.LittleEndian.AppendUint32(b, h.Channel)
	b = append(b, h.Destination[:]...)
	b = append(b, h.Source[:]...)
	return binary.LittleEndian.AppendUint64(b, h.PacketNumber)
}

// Parse decodes the header at the start of b. It checks, in this order, the
// length, the protocol id, the reserved bits and the handshake form: the
// order is cheapest first, so stray traffic is dropped after one compare.
func (h *Header) Parse(b []byte) error {
	if len(b) < HeaderLen {
		return ErrShortPacket
	}
	suite, ok := SuiteOf(b)
	if !ok {
		return ErrProtocolID
	}
	f := Flags(b[OffFlags])
	if f&^flagsDefined != 0 || b[OffReserved] != 0 {
		return ErrHeaderInvalid
	}
	h.Suite = suite
	h.Flags = f
	h.Length = binary.LittleEndian.Uint16(b[OffLength:])
	h.Channel = binary.LittleEndian.Uint32(b[OffChannel:])
	copy(h.Destination[:], b[OffDestination:OffDestination+8])
	copy(h.Source[:], b[OffSource:OffSource+8])
	h.PacketNumber = binary.LittleEndian.Uint64(b[OffPacketNumber:])
	if f&FlagHandshake != 0 && (f != FlagHandshake || h.Channel != 0 || h.PacketNumber != 0) {
		return ErrHandshakeForm
	}
	return nil
}

// IsHandshake reports whether the packet is a handshake packet.
func (h *Header) IsHandshake() bool { return h.Flags&FlagHandshake != 0 }

// HasProtocolID reports whether b starts with the protocol id of one of
// haven/1's suites: the one check a socket reader makes before anything
// else.
func HasProtocolID(b []byte) bool {
	_, ok := SuiteOf(b)
	return ok
}

// PutPacketNumber overwrites the packet number of the header at the start of
// b, for senders that build the header before the number is known.
func PutPacketNumber(b []byte, pn uint64) {
	binary.LittleEndian.PutUint64(b[OffPacketNumber:OffPacketNumber+8], pn)
}

// PutLength overwrites the length field of the header at the start of b.
func PutLength(b []byte, n uint16) {
	binary.LittleEndian.PutUint16(b[OffLength:OffLength+2], n)
}
