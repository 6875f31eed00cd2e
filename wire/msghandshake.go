package wire

import (
	"encoding/binary"
	"errors"
)

// Handshake message bodies (docs/PROTOCOL.md §6). Each travels alone in a
// handshake packet (FlagHandshake, channel 0, packet number 0), so every
// handshake packet has one fixed size, and a response or cookie reply is
// smaller than the initiation that caused it (no amplification).
const (
	AEADTag   = 16 // ChaCha20-Poly1305 tag
	MACLen    = 16 // BLAKE2s-128 MAC
	NonceLenX = 24 // XChaCha20-Poly1305 nonce (cookie reply)

	// Sizes of the plaintexts carried inside the Noise payloads.
	SessionParamsLen = 24
	InitPayloadLen   = 40                   // Timestamp, service hint, SessionParams
	RespPayloadLen   = SessionParamsLen + 8 // SessionParams, flags, reserved

	// HANDSHAKE_INIT body: e, encrypted s, encrypted payload, mac1, mac2.
	OffInitEphemeral = 0
	OffInitStatic    = OffInitEphemeral + KeyLen                 // 32
	OffInitPayload   = OffInitStatic + KeyLen + AEADTag          // 80
	OffInitMAC1      = OffInitPayload + InitPayloadLen + AEADTag // 136
	OffInitMAC2      = OffInitMAC1 + MACLen                      // 152
	InitBodyLen      = OffInitMAC2 + MACLen                      // 168

	// HANDSHAKE_RESPONSE body: e, encrypted payload, mac1, mac2.
	OffRespEphemeral = 0
	OffRespPayload   = OffRespEphemeral + KeyLen                 // 32
	OffRespMAC1      = OffRespPayload + RespPayloadLen + AEADTag // 80
	OffRespMAC2      = OffRespMAC1 + MACLen                      // 96
	RespBodyLen      = OffRespMAC2 + MACLen                      // 112

	// COOKIE_REPLY body: nonce, encrypted cookie.
	OffCookieNonce  = 0
	OffCookieSealed = OffCookieNonce + NonceLenX         // 24
	CookieBodyLen   = OffCookieSealed + MACLen + AEADTag // 56

	// Whole handshake packets: header, message header, body.
	InitPacketLen     = HeaderLen + MsgHeaderLen + InitBodyLen   // 216
	ResponsePacketLen = HeaderLen + MsgHeaderLen + RespBodyLen   // 160
	CookiePacketLen   = HeaderLen + MsgHeaderLen + CookieBodyLen // 104

	// Offsets of the MACs from the start of their packet: each MAC covers
	// every byte before it, header included.
	InitMAC1Offset = HeaderLen + MsgHeaderLen + OffInitMAC1 // 184
	InitMAC2Offset = HeaderLen + MsgHeaderLen + OffInitMAC2 // 200
	RespMAC1Offset = HeaderLen + MsgHeaderLen + OffRespMAC1 // 128
	RespMAC2Offset = HeaderLen + MsgHeaderLen + OffRespMAC2 // 144
)

// HandshakeInit is the Noise IK first message (-> e, es, s, ss) with its
// payload sealed inside, plus the two anti-DoS MACs.
type HandshakeInit struct {
	Ephemeral [KeyLen]byte
	Static    [KeyLen + AEADTag]byte
	Payload   [InitPayloadLen + AEADTag]byte
	MAC1      [MACLen]byte
	MAC2      [MACLen]byte
}

func (m *HandshakeInit) Len() int { return MsgHeaderLen + InitBodyLen }
func (m *HandshakeInit) Append(b []byte) []byte {
	b = appendHeader(b, MsgHandshakeInit, 0, InitBodyLen, 0)
	b = append(b, m.Ephemeral[:]...)
	b = append(b, m.Static[:]...)
	b = append(b, m.Payload[:]...)
	b = append(b, m.MAC1[:]...)
	return append(b, m.MAC2[:]...)
}
func (m *HandshakeInit) Parse(b []byte) error {
	body, err := fixedBody(b, MsgHandshakeInit, InitBodyLen)
	if err != nil {
		return err
	}
	copy(m.Ephemeral[:], body[OffInitEphemeral:])
	copy(m.Static[:], body[OffInitStatic:])
	copy(m.Payload[:], body[OffInitPayload:])
	copy(m.MAC1[:], body[OffInitMAC1:])
	copy(m.MAC2[:], body[OffInitMAC2:])
	return nil
}

// HandshakeResponse is the Noise IK second message (<- e, ee, se) with its
// payload sealed inside, plus the two MACs.
type HandshakeResponse struct {
	Ephemeral [KeyLen]byte
	Payload   [RespPayloadLen + AEADTag]byte
	MAC1      [MACLen]byte
	MAC2      [MACLen]byte
}

func (m *HandshakeResponse) Len() int { return MsgHeaderLen + RespBodyLen }
func (m *HandshakeResponse) Append(b []byte) []byte {
	b = appendHeader(b, MsgHandshakeResponse, 0, RespBodyLen, 0)
	b = append(b, m.Ephemeral[:]...)
	b = append(b, m.Payload[:]...)
	b = append(b, m.MAC1[:]...)
	return append(b, m.MAC2[:]...)
}
func (m *HandshakeResponse) Parse(b []byte) error {
	body, err := fixedBody(b, MsgHandshakeResponse, RespBodyLen)
	if err != nil {
		return err
	}
	copy(m.Ephemeral[:], body[OffRespEphemeral:])
	copy(m.Payload[:], body[OffRespPayload:])
	copy(m.MAC1[:], body[OffRespMAC1:])
	copy(m.MAC2[:], body[OffRespMAC2:])
	return nil
}

// CookieReply answers an initiation under load with a sealed cookie the
// initiator must use for mac2 when it retries.
type CookieReply struct {
	Nonce  [NonceLenX]byte
	Cookie [MACLen + AEADTag]byte
}

func (m *CookieReply) Len() int { return MsgHeaderLen + CookieBodyLen }
func (m *CookieReply) Append(b []byte) []byte {
	b = appendHeader(b, MsgCookieReply, 0, CookieBodyLen, 0)
	b = append(b, m.Nonce[:]...)
	return append(b, m.Cookie[:]...)
}
func (m *CookieReply) Parse(b []byte) error {
	body, err := fixedBody(b, MsgCookieReply, CookieBodyLen)
	if err != nil {
		return err
	}
	copy(m.Nonce[:], body[OffCookieNonce:])
	copy(m.Cookie[:], body[OffCookieSealed:])
	return nil
}

// FECNone is the FEC scheme "none"; FECParity (msgrepair.go) is scheme 1,
// repair symbols on datagram channels (PROTOCOL.md §5.11).
const FECNone uint8 = 0

// SessionParams layout: options fixed for the session's life, each side
// announcing its own (docs/PROTOCOL.md §6.4).
const (
	offParamMaxPacket     = 0  // 2 bytes
	offParamAlignLog2     = 2  // 1 byte
	offParamFEC           = 3  // 1 byte
	offParamMaxChannels   = 4  // 4 bytes
	offParamChannelWindow = 8  // 4 bytes
	offParamIdleTimeout   = 12 // 4 bytes, milliseconds
	offParamSessionWindow = 16 // 8 bytes
)

// ErrParams reports session parameters outside their allowed ranges.
var ErrParams = errors.New("wire: invalid session parameters")

// SessionParams are the options each side announces in the handshake. The
// initiator proposes AlignLog2 and FEC; the responder's values are the ones
// in force. MaxPacketSize, limits and windows are each side's own.
type SessionParams struct {
	MaxPacketSize uint16 // largest packet this side accepts, ≥ MinPacketSize
	AlignLog2     uint8  // message body alignment 1<<AlignLog2, 0..4
	FEC           uint8  // FECNone or FECParity
	MaxChannels   uint32 // channels the peer may open, cumulative, initially
	ChannelWindow uint32 // initial receive window of each channel, ≤ MaxStreamWindow
	IdleTimeoutMs uint32 // this side closes after so long without a packet
	SessionWindow uint64 // initial receive window of the whole session
}

// Align returns the body alignment in bytes.
func (p *SessionParams) Align() int { return 1 << p.AlignLog2 }

func (p *SessionParams) Len() int { return SessionParamsLen }
func (p *SessionParams) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, p.MaxPacketSize)
	b = append(b, p.AlignLog2, p.FEC)
	b = binary.LittleEndian.AppendUint32(b, p.MaxChannels)
	b = binary.LittleEndian.AppendUint32(b, p.ChannelWindow)
	b = binary.LittleEndian.AppendUint32(b, p.IdleTimeoutMs)
	return binary.LittleEndian.AppendUint64(b, p.SessionWindow)
}

// Parse decodes and range-checks parameters from b[:SessionParamsLen].
func (p *SessionParams) Parse(b []byte) error {
	if len(b) < SessionParamsLen {
		return ErrParams
	}
	q := SessionParams{
		MaxPacketSize: le16(b[offParamMaxPacket:]),
		AlignLog2:     b[offParamAlignLog2],
		FEC:           b[offParamFEC],
		MaxChannels:   le32(b[offParamMaxChannels:]),
		ChannelWindow: le32(b[offParamChannelWindow:]),
		IdleTimeoutMs: le32(b[offParamIdleTimeout:]),
		SessionWindow: le64(b[offParamSessionWindow:]),
	}
	if q.MaxPacketSize < MinPacketSize || q.MaxPacketSize > MaxPacketSize ||
		q.AlignLog2 > 4 || q.FEC > FECParity || q.ChannelWindow > MaxStreamWindow {
		return ErrParams
	}
	*p = q
	return nil
}

// Timestamp orders initiations from one initiator: a responder ignores an
// initiation whose timestamp is not above the last one it accepted from the
// same static key. Seconds and nanoseconds since 1970 UTC; senders may
// coarsen the nanoseconds.
type Timestamp struct {
	Seconds uint64
	Nanos   uint32
}

// After reports whether t is strictly later than u.
func (t Timestamp) After(u Timestamp) bool {
	return t.Seconds > u.Seconds || t.Seconds == u.Seconds && t.Nanos > u.Nanos
}

// InitPayload layout: the plaintext of HandshakeInit.Payload.
const (
	offInitTimestampSec  = 0  // 8 bytes
	offInitTimestampNano = 8  // 4 bytes
	offInitService       = 12 // 4 bytes: the service hint, 0 for none
	offInitParams        = 16 // SessionParams
)

// InitPayload is the plaintext sealed in a HandshakeInit.
type InitPayload struct {
	Time Timestamp
	// Service is the hint of the stream service the initiator will open
	// first (ServiceHint), 0 for none (PROTOCOL.md §7.2).
	Service uint32
	Params  SessionParams
}

func (p *InitPayload) Len() int { return InitPayloadLen }
func (p *InitPayload) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, p.Time.Seconds)
	b = binary.LittleEndian.AppendUint32(b, p.Time.Nanos)
	b = binary.LittleEndian.AppendUint32(b, p.Service)
	return p.Params.Append(b)
}
func (p *InitPayload) Parse(b []byte) error {
	if len(b) != InitPayloadLen || le32(b[offInitTimestampNano:]) >= 1e9 {
		return ErrParams
	}
	if err := p.Params.Parse(b[offInitParams:]); err != nil {
		return err
	}
	p.Time = Timestamp{Seconds: le64(b[offInitTimestampSec:]), Nanos: le32(b[offInitTimestampNano:])}
	p.Service = le32(b[offInitService:])
	return nil
}

// ServiceHint is the 32-bit name of a stream service in a HandshakeInit:
// FNV-1a of its name's bytes, 1 in place of 0 (which means no hint). Two
// names may share a hint: a responder that serves one answers "served"
// for both, and a refusal then arrives as it would without the hint
// (PROTOCOL.md §7.2). Written out rather than with hash/fnv, whose hasher
// would be an allocation on every dial.
func ServiceHint(name string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	if h == 0 {
		h = 1
	}
	return h
}

// RespPayload layout: the plaintext of HandshakeResponse.Payload.
const (
	offRespParams   = 0                // SessionParams
	offRespFlags    = SessionParamsLen // 4 bytes
	offRespReserved = offRespFlags + 4 // 4 bytes: zero
)

// RespServiceServed, in RespPayload.Flags, answers the initiation's
// service hint: the responder has a listener for that service. It is never
// set when the initiation had no hint.
const RespServiceServed uint32 = 1

// RespPayload is the plaintext sealed in a HandshakeResponse.
type RespPayload struct {
	Params SessionParams
	Flags  uint32 // RespServiceServed; other bits zero
}

func (p *RespPayload) Len() int { return RespPayloadLen }
func (p *RespPayload) Append(b []byte) []byte {
	b = p.Params.Append(b)
	b = binary.LittleEndian.AppendUint32(b, p.Flags)
	return binary.LittleEndian.AppendUint32(b, 0)
}
func (p *RespPayload) Parse(b []byte) error {
	if len(b) != RespPayloadLen || le32(b[offRespFlags:])&^RespServiceServed != 0 ||
		le32(b[offRespReserved:]) != 0 {
		return ErrParams
	}
	if err := p.Params.Parse(b[offRespParams:]); err != nil {
		return err
	}
	p.Flags = le32(b[offRespFlags:])
	return nil
}
