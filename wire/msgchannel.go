package wire

import "encoding/binary"

// ChannelType says how a channel carries data; fixed when it opens.
type ChannelType uint8

const (
	// ChannelStream is a reliable, ordered byte stream with half-close.
	ChannelStream ChannelType = 1
	// ChannelDatagram carries unreliable datagrams, boundaries kept.
	ChannelDatagram ChannelType = 2
)

// MaxServiceLen bounds a service name in OPEN.
const MaxServiceLen = 255

// REFUSE reason codes (docs/PROTOCOL.md §5.4).
const (
	RefuseNoService    uint32 = 1 // no listener for the service name
	RefuseChannelLimit uint32 = 2 // too many open channels
	RefuseApplication  uint32 = 3 // the application declined
	RefuseType         uint32 = 4 // channel type not served for that name
	RefuseShutdown     uint32 = 5 // the listener is closing
)

// OPEN body layout.
const (
	offOpenType     = 0 // 1 byte: ChannelType
	offOpenPriority = 1 // 1 byte: 0 most urgent
	offOpenReserved = 2 // 2 bytes: zero
	offOpenService  = 4 // service name, the rest of the body
)

// Open is the first message of a channel the sender opens; the packet's
// channel id is the new channel. The argument is the receive window the
// opener grants for the channel (zero for datagram channels).
type Open struct {
	Type     ChannelType
	Priority uint8
	Window   uint32
	Service  []byte // aliases the packet after Parse; at most MaxServiceLen
}

func (m *Open) Len() int { return MsgHeaderLen + offOpenService + len(m.Service) }

// Append appends the OPEN. Callers validate the service name's length.
func (m *Open) Append(b []byte) []byte {
	b = appendHeader(b, MsgOpen, 0, offOpenService+len(m.Service), m.Window)
	b = append(b, byte(m.Type), m.Priority, 0, 0)
	return append(b, m.Service...)
}

func (m *Open) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgOpen, 0)
	if err != nil {
		return err
	}
	if len(body) < offOpenService || len(body)-offOpenService > MaxServiceLen ||
		le16(body[offOpenReserved:]) != 0 {
		return ErrMessageBody
	}
	t := ChannelType(body[offOpenType])
	if t != ChannelStream && t != ChannelDatagram {
		return ErrMessageBody
	}
	m.Type, m.Priority, m.Window = t, body[offOpenPriority], h.Arg
	m.Service = body[offOpenService:]
	return nil
}

// Accept confirms an OPEN. The argument is the receive window the accepter
// grants for the channel; the body is empty.
type Accept struct{ Window uint32 }

func (m *Accept) Len() int               { return MsgHeaderLen }
func (m *Accept) Append(b []byte) []byte { return appendHeader(b, MsgAccept, 0, 0, m.Window) }
func (m *Accept) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgAccept, 0)
	if err != nil {
		return err
	}
	if len(body) != 0 {
		return ErrMessageBody
	}
	m.Window = h.Arg
	return nil
}

// Refuse declines an OPEN: the argument is a reason code, the body text that
// names what was refused (for example the service name).
type Refuse struct {
	Code   uint32
	Reason []byte // aliases the packet after Parse; at most MaxReasonLen
}

func (m *Refuse) Len() int { return MsgHeaderLen + min(len(m.Reason), MaxReasonLen) }
func (m *Refuse) Append(b []byte) []byte {
	r := m.Reason[:min(len(m.Reason), MaxReasonLen)]
	return append(appendHeader(b, MsgRefuse, 0, len(r), m.Code), r...)
}
func (m *Refuse) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgRefuse, 0)
	if err != nil {
		return err
	}
	if len(body) > MaxReasonLen {
		return ErrMessageBody
	}
	m.Code, m.Reason = h.Arg, body
	return nil
}

// Reset abandons the sending direction of a stream channel: the argument is
// an error code, the body the final size (bytes ever sent on the channel),
// which keeps session flow control exact.
type Reset struct {
	Code      uint32
	FinalSize uint64
}

func (m *Reset) Len() int { return MsgHeaderLen + 8 }
func (m *Reset) Append(b []byte) []byte {
	return binary.LittleEndian.AppendUint64(appendHeader(b, MsgReset, 0, 8, m.Code), m.FinalSize)
}
func (m *Reset) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgReset, 0)
	if err != nil {
		return err
	}
	if len(body) != 8 {
		return ErrMessageBody
	}
	m.Code, m.FinalSize = h.Arg, le64(body)
	return nil
}

// StreamFin ends the sender's direction of a stream channel (half-close).
const StreamFin uint8 = 0x01

// Stream carries bytes of a stream channel. The argument holds the low 32
// bits of the data's offset in the stream; the receiver restores the full
// 64-bit offset as the value nearest its next expected offset
// (FullStreamOffset), which is exact because windows stay below 2^30.
type Stream struct {
	Offset uint32
	Fin    bool
	Data   []byte // aliases the packet after Parse
}

func (m *Stream) Len() int { return MsgHeaderLen + len(m.Data) }
func (m *Stream) Append(b []byte) []byte {
	var f uint8
	if m.Fin {
		f = StreamFin
	}
	return append(appendHeader(b, MsgStream, f, len(m.Data), m.Offset), m.Data...)
}
func (m *Stream) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgStream, StreamFin)
	if err != nil {
		return err
	}
	m.Offset, m.Fin, m.Data = h.Arg, h.Flags&StreamFin != 0, body
	return nil
}

// MaxStreamWindow is the largest flow-control window a receiver may grant on
// one channel; it keeps 32-bit stream offsets unambiguous.
const MaxStreamWindow = 1 << 30

// FullStreamOffset restores a 64-bit stream offset from its low 32 bits,
// choosing the value nearest expected (RFC 9000 §A.3's method, with a fixed
// 32-bit width).
func FullStreamOffset(expected uint64, low uint32) uint64 {
	const win, half = 1 << 32, 1 << 31
	candidate := expected&^(win-1) | uint64(low)
	switch {
	case candidate < expected && expected-candidate >= half && candidate <= ^uint64(0)-win:
		return candidate + win
	case candidate > expected && candidate-expected > half && candidate >= win:
		return candidate - win
	}
	return candidate
}

// Datagram flags and fragment layout.
const (
	// DatagramFragment marks a fragment of a datagram larger than a packet.
	DatagramFragment uint8 = 0x01
	offFragTotal           = 0 // 4 bytes: the whole datagram's size
	offFragOffset          = 4 // 4 bytes: this fragment's offset in it
	fragHeaderLen          = 8
	// MaxDatagramSize is the largest datagram a channel carries.
	MaxDatagramSize = 65507
)

// Datagram flow control (docs/PROTOCOL.md §5.10): a receiver limits how many
// datagrams the peer may send on a channel, counted by sequence number.
const (
	// InitialDatagramLimit is each direction's datagram limit on a new
	// datagram channel, before the receiver's OPEN or ACCEPT argument or
	// MAX_DATA raises it: sequence numbers 0 … 15 may be sent at once.
	InitialDatagramLimit = 16
	// MaxDatagramWindow is the most a datagram limit may exceed the next
	// sequence number the receiver expects; it keeps 32-bit sequence
	// numbers unambiguous (FullDatagramSeq).
	MaxDatagramWindow = 1 << 30
)

// FullDatagramSeq restores a datagram's 64-bit sequence number from the
// 32 bits of its DATAGRAM argument, choosing the value nearest expected,
// as FullStreamOffset does for stream offsets.
func FullDatagramSeq(expected uint64, low uint32) uint64 { return FullStreamOffset(expected, low) }

// Datagram carries one datagram, or one fragment of one. The argument is
// the datagram's sequence number on its channel (shared by its fragments).
type Datagram struct {
	Seq uint32
	// Fragmented, Total and FragOffset describe a fragment: Data is bytes
	// [FragOffset, FragOffset+len(Data)) of a datagram of Total bytes.
	Fragmented bool
	Total      uint32
	FragOffset uint32
	Data       []byte // aliases the packet after Parse
}

func (m *Datagram) Len() int {
	if m.Fragmented {
		return MsgHeaderLen + fragHeaderLen + len(m.Data)
	}
	return MsgHeaderLen + len(m.Data)
}

func (m *Datagram) Append(b []byte) []byte {
	if !m.Fragmented {
		return append(appendHeader(b, MsgDatagram, 0, len(m.Data), m.Seq), m.Data...)
	}
	b = appendHeader(b, MsgDatagram, DatagramFragment, fragHeaderLen+len(m.Data), m.Seq)
	b = binary.LittleEndian.AppendUint32(b, m.Total)
	b = binary.LittleEndian.AppendUint32(b, m.FragOffset)
	return append(b, m.Data...)
}

// Parse decodes a DATAGRAM. A fragment must be non-empty and lie inside a
// datagram of at most MaxDatagramSize bytes.
func (m *Datagram) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgDatagram, DatagramFragment)
	if err != nil {
		return err
	}
	m.Seq, m.Fragmented = h.Arg, h.Flags&DatagramFragment != 0
	if !m.Fragmented {
		if len(body) > MaxDatagramSize {
			return ErrMessageBody
		}
		m.Total, m.FragOffset, m.Data = uint32(len(body)), 0, body
		return nil
	}
	if len(body) <= fragHeaderLen {
		return ErrMessageBody
	}
	m.Total, m.FragOffset = le32(body[offFragTotal:]), le32(body[offFragOffset:])
	m.Data = body[fragHeaderLen:]
	if m.Total > MaxDatagramSize || uint64(m.FragOffset)+uint64(len(m.Data)) > uint64(m.Total) {
		return ErrMessageBody
	}
	return nil
}
