package wire

import (
	"encoding/binary"
	"errors"

	"github.com/havenproto/haven/alignment"
)

// Message header layout (docs/PROTOCOL.md §4): every message starts with the
// same 8 bytes, Fenrir's fixed stream header generalised to every message.
const (
	OffMsgID     = 0 // 1 byte: MsgID
	OffMsgFlags  = 1 // 1 byte: per-message flags
	OffMsgLength = 2 // 2 bytes: body length, padding excluded
	OffMsgArg    = 4 // 4 bytes: per-message argument
	MsgHeaderLen = 8
)

// MsgID identifies a message; it alone says how the rest is read.
type MsgID uint8

// The message set of protocol haven/1, by sub-protocol.
const (
	// MsgPadding ends the message list: the rest of the payload is padding.
	MsgPadding MsgID = 0x00

	// Handshake sub-protocol: only in handshake packets, one per packet.
	MsgHandshakeInit     MsgID = 0x01
	MsgHandshakeResponse MsgID = 0x02
	MsgCookieReply       MsgID = 0x03

	// Session messages: belong to no channel, allowed in any transport packet.
	MsgAck  MsgID = 0x08
	MsgPing MsgID = 0x09

	// Scoped control: the packet's channel is the scope (0 = the session).
	MsgClose         MsgID = 0x10
	MsgMaxData       MsgID = 0x11
	MsgBlocked       MsgID = 0x12
	MsgMaxChannels   MsgID = 0x13 // channel 0 only
	MsgPathChallenge MsgID = 0x14 // channel 0 only
	MsgPathResponse  MsgID = 0x15 // channel 0 only

	// Channel control: channel ≠ 0.
	MsgOpen   MsgID = 0x20
	MsgAccept MsgID = 0x21
	MsgRefuse MsgID = 0x22
	MsgReset  MsgID = 0x23

	// Data: channel ≠ 0.
	MsgStream   MsgID = 0x30
	MsgDatagram MsgID = 0x31

	// MsgIgnorable is the bit that marks an extension message a receiver
	// that does not know it skips. An unknown id without it is a protocol
	// error that closes the session.
	MsgIgnorable MsgID = 0x80
)

var msgNames = [...]string{
	MsgPadding: "PADDING", MsgHandshakeInit: "HANDSHAKE_INIT",
	MsgHandshakeResponse: "HANDSHAKE_RESPONSE", MsgCookieReply: "COOKIE_REPLY",
	MsgAck: "ACK", MsgPing: "PING", MsgClose: "CLOSE", MsgMaxData: "MAX_DATA",
	MsgBlocked: "BLOCKED", MsgMaxChannels: "MAX_CHANNELS",
	MsgPathChallenge: "PATH_CHALLENGE", MsgPathResponse: "PATH_RESPONSE",
	MsgOpen: "OPEN", MsgAccept: "ACCEPT", MsgRefuse: "REFUSE", MsgReset: "RESET",
	MsgStream: "STREAM", MsgDatagram: "DATAGRAM", MsgDatagramRepair: "DATAGRAM_REPAIR",
	MsgAddress: "ADDRESS", MsgAddressRetire: "ADDRESS_RETIRE",
}

// Known reports whether id belongs to the haven/1 message set.
func (id MsgID) Known() bool {
	return int(id) < len(msgNames) && (id == MsgPadding || msgNames[id] != "")
}

func (id MsgID) String() string {
	if id.Known() {
		return msgNames[id]
	}
	const hex = "0123456789abcdef"
	return "MSG_0x" + string([]byte{hex[id>>4], hex[id&15]})
}

// Message errors.
var (
	ErrShortMessage   = errors.New("wire: message shorter than its header")
	ErrMessageLength  = errors.New("wire: message body overruns the packet")
	ErrMessageID      = errors.New("wire: unexpected message id")
	ErrMessageBody    = errors.New("wire: malformed message body")
	ErrUnknownMessage = errors.New("wire: unknown message id without the ignorable bit")
)

// MessageHeader is the 8-byte header in front of every message.
type MessageHeader struct {
	ID     MsgID
	Flags  uint8
	Length uint16 // body bytes that follow the header, padding excluded
	Arg    uint32
}

// Len returns MsgHeaderLen.
func (h *MessageHeader) Len() int { return MsgHeaderLen }

// Append appends the 8 header bytes to b.
func (h *MessageHeader) Append(b []byte) []byte {
	b = append(b, byte(h.ID), h.Flags)
	b = binary.LittleEndian.AppendUint16(b, h.Length)
	return binary.LittleEndian.AppendUint32(b, h.Arg)
}

// Parse decodes the header at the start of b and checks that the body fits.
func (h *MessageHeader) Parse(b []byte) error {
	if len(b) < MsgHeaderLen {
		return ErrShortMessage
	}
	h.ID = MsgID(b[OffMsgID])
	h.Flags = b[OffMsgFlags]
	h.Length = binary.LittleEndian.Uint16(b[OffMsgLength:])
	h.Arg = binary.LittleEndian.Uint32(b[OffMsgArg:])
	if int(h.Length) > len(b)-MsgHeaderLen {
		return ErrMessageLength
	}
	return nil
}

// MessageStart returns where the next message header goes when the previous
// message ended at offset end of the packet and bodies are aligned to align
// bytes: the first offset ≥ end whose body (8 bytes on) is aligned. Offsets
// count from the first byte of the packet header.
func MessageStart(end, align int) int {
	return alignment.Up(end+MsgHeaderLen, align) - MsgHeaderLen
}

// AppendAlign appends zero padding to the packet b (which starts at the
// packet's first header byte) so that a message appended next has its body
// aligned to align (1, 2, 4, 8 or 16).
func AppendAlign(b []byte, align int) []byte {
	for n := MessageStart(len(b), align) - len(b); n > 0; n-- {
		b = append(b, 0)
	}
	return b
}

// MessageReader walks the messages of a decrypted packet without copying or
// allocating. The zero value is empty; Reset starts a walk.
//
//	var r wire.MessageReader
//	r.Reset(plain, align)
//	for r.Next() { m := r.Message(); ... }
//	if r.Err() != nil { drop the packet }
type MessageReader struct {
	b     []byte // packet: header and messages, tag excluded
	pos   int    // end of the current message
	start int    // start of the current message
	align int
	cur   []byte
	hdr   MessageHeader
	err   error
}

// Reset starts a walk over packet (header included, tag excluded; the caller
// keeps ownership, and Message results alias it) with body alignment align.
func (r *MessageReader) Reset(packet []byte, align int) {
	// Field by field: a whole literal was built on the stack and copied 16
	// bytes at a time from narrower stores, which stalls store-to-load
	// forwarding (2 % of a bulk receiver's CPU, once per packet).
	r.b, r.pos, r.start, r.align, r.cur, r.hdr, r.err = packet, HeaderLen, 0, align, nil, MessageHeader{}, nil
	if len(packet) < HeaderLen {
		r.err = ErrShortPacket
	}
	if !alignment.Valid(align) {
		r.err = ErrMessageBody
	}
}

// Next advances to the next message. It returns false at the end of the
// messages (the end of the packet, a PADDING id, or fewer bytes left than a
// message header) and on a malformed message, which Err then reports.
func (r *MessageReader) Next() bool {
	if r.err != nil {
		return false
	}
	start := MessageStart(r.pos, r.align)
	if start+MsgHeaderLen > len(r.b) || r.b[start] == byte(MsgPadding) {
		r.pos = len(r.b)
		return false
	}
	if err := r.hdr.Parse(r.b[start:]); err != nil {
		r.err = err
		return false
	}
	end := start + MsgHeaderLen + int(r.hdr.Length)
	r.cur = r.b[start:end:end]
	r.start, r.pos = start, end
	return true
}

// Message returns the current message, header and body, aliasing the packet.
func (r *MessageReader) Message() []byte { return r.cur }

// Offset returns where the current message starts, counted from the first
// byte of the packet header.
func (r *MessageReader) Offset() int { return r.start }

// Header returns the current message's parsed header.
func (r *MessageReader) Header() MessageHeader { return r.hdr }

// Err returns the error that stopped the walk, or nil at a clean end.
func (r *MessageReader) Err() error { return r.err }
