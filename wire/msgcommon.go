package wire

import "encoding/binary"

// Ignorable reports whether a receiver that does not know id may skip it.
func (id MsgID) Ignorable() bool { return id&MsgIgnorable != 0 }

// openMessage checks that b holds one message with the given id and returns
// its header and body. Flags outside allowedFlags are malformed: encodings
// are canonical, so parsing then appending gives back the same bytes.
func openMessage(b []byte, id MsgID, allowedFlags uint8) (MessageHeader, []byte, error) {
	var h MessageHeader
	if err := h.Parse(b); err != nil {
		return h, nil, err
	}
	if h.ID != id {
		return h, nil, ErrMessageID
	}
	if h.Flags&^allowedFlags != 0 {
		return h, nil, ErrMessageBody
	}
	return h, b[MsgHeaderLen : MsgHeaderLen+int(h.Length)], nil
}

// appendHeader appends a message header; n is the body length.
func appendHeader(b []byte, id MsgID, flags uint8, n int, arg uint32) []byte {
	h := MessageHeader{ID: id, Flags: flags, Length: uint16(n), Arg: arg}
	return h.Append(b)
}

// fixedBody checks a body of exactly n bytes with a zero argument.
func fixedBody(b []byte, id MsgID, n int) ([]byte, error) {
	h, body, err := openMessage(b, id, 0)
	if err != nil {
		return nil, err
	}
	if len(body) != n || h.Arg != 0 {
		return nil, ErrMessageBody
	}
	return body, nil
}

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }

// AllowedIn reports whether a message with this id may appear in a packet of
// channel ch (handshake tells whether it is a handshake packet). These are
// the scope rules of docs/PROTOCOL.md §4.3; a known message out of place is a
// protocol error.
func (id MsgID) AllowedIn(ch uint32, handshake bool) bool {
	switch id {
	case MsgHandshakeInit, MsgHandshakeResponse, MsgCookieReply:
		return handshake
	}
	if handshake {
		return false
	}
	switch id {
	case MsgAck, MsgPing, MsgClose, MsgMaxData, MsgBlocked:
		return true
	case MsgMaxChannels, MsgPathChallenge, MsgPathResponse, MsgAddress, MsgAddressRetire:
		return ch == 0
	case MsgOpen, MsgAccept, MsgRefuse, MsgReset, MsgStream, MsgDatagram, MsgDatagramRepair:
		return ch != 0
	}
	return id.Ignorable() // unknown ids: skippable ones anywhere
}
