package wire

import "encoding/binary"

// ACK body layout (docs/PROTOCOL.md §5.1). The argument is the ack delay.
const (
	offAckLargest    = 0  // 8 bytes: largest acknowledged packet number
	offAckFirstRange = 8  // 4 bytes: packets acknowledged below it, contiguous
	offAckReserved   = 12 // 4 bytes: zero
	offAckRanges     = 16 // then 8 bytes per further range: gap u32, length u32
	ackRangeLen      = 8
)

// AckRange is a closed interval of acknowledged packet numbers.
type AckRange struct{ Smallest, Largest uint64 }

// Ack acknowledges received packets (session message, any channel).
type Ack struct {
	// Delay is how long the receiver held the ACK of the largest packet,
	// in microseconds (RFC 9000 §13.2.5).
	Delay uint32
	// Ranges are disjoint, in descending order, separated by at least one
	// unacknowledged packet; Ranges[0].Largest is the largest acknowledged.
	// Parse writes into the slice's backing array when it has room for
	// every range, and allocates nothing then: give it storage (a fixed
	// array the caller owns, say) to parse without allocating.
	Ranges []AckRange
}

// encodable returns how many leading ranges fit the 32-bit fields; older
// ranges beyond are left out, which only delays their acknowledgement.
func (m *Ack) encodable() int {
	if len(m.Ranges) == 0 || m.Ranges[0].Largest-m.Ranges[0].Smallest > 0xFFFFFFFF {
		return 0
	}
	n := 1
	for ; n < len(m.Ranges) && n < (0xFFFF-16)/ackRangeLen+1; n++ {
		prev, r := m.Ranges[n-1], m.Ranges[n]
		if prev.Smallest < r.Largest+2 || prev.Smallest-r.Largest-2 > 0xFFFFFFFF ||
			r.Largest-r.Smallest > 0xFFFFFFFF || r.Smallest > r.Largest {
			break
		}
	}
	return n
}

// Len returns the encoded size. An Ack without ranges encodes as nothing.
func (m *Ack) Len() int {
	n := m.encodable()
	if n == 0 {
		return 0
	}
	return MsgHeaderLen + offAckRanges + (n-1)*ackRangeLen
}

// Append appends the ACK. Ranges that break the ordering rules or overflow
// the fields end the encoding early; with no encodable range nothing is
// appended.
func (m *Ack) Append(b []byte) []byte {
	n := m.encodable()
	if n == 0 {
		return b
	}
	b = appendHeader(b, MsgAck, 0, offAckRanges+(n-1)*ackRangeLen, m.Delay)
	first := m.Ranges[0]
	b = binary.LittleEndian.AppendUint64(b, first.Largest)
	b = binary.LittleEndian.AppendUint32(b, uint32(first.Largest-first.Smallest))
	b = binary.LittleEndian.AppendUint32(b, 0)
	for i := 1; i < n; i++ {
		prev, r := m.Ranges[i-1], m.Ranges[i]
		b = binary.LittleEndian.AppendUint32(b, uint32(prev.Smallest-r.Largest-2))
		b = binary.LittleEndian.AppendUint32(b, uint32(r.Largest-r.Smallest))
	}
	return b
}

// Parse decodes an ACK; ranges that would go below packet number 0 are
// malformed. It decodes into m.Ranges's backing array, and allocates a
// larger one, once, only when that has no room for all the ranges.
func (m *Ack) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgAck, 0)
	if err != nil {
		return err
	}
	if len(body) < offAckRanges || (len(body)-offAckRanges)%ackRangeLen != 0 ||
		le32(body[offAckReserved:]) != 0 {
		return ErrMessageBody
	}
	largest := le64(body[offAckLargest:])
	first := uint64(le32(body[offAckFirstRange:]))
	if first > largest {
		return ErrMessageBody
	}
	m.Delay = h.Arg
	if n := 1 + (len(body)-offAckRanges)/ackRangeLen; cap(m.Ranges) < n {
		m.Ranges = make([]AckRange, 0, max(n, 2*cap(m.Ranges)))
	}
	m.Ranges = append(m.Ranges[:0], AckRange{Smallest: largest - first, Largest: largest})
	lo := largest - first
	for p := offAckRanges; p < len(body); p += ackRangeLen {
		gap := uint64(le32(body[p:])) + 2
		length := uint64(le32(body[p+4:]))
		if lo < gap || lo-gap < length {
			return ErrMessageBody
		}
		hi := lo - gap
		lo = hi - length
		m.Ranges = append(m.Ranges, AckRange{Smallest: lo, Largest: hi})
	}
	return nil
}

// Ping asks for an acknowledgement; it keeps a path and its NAT bindings
// alive. Session message, any channel, empty body.
type Ping struct{}

func (m *Ping) Len() int               { return MsgHeaderLen }
func (m *Ping) Append(b []byte) []byte { return appendHeader(b, MsgPing, 0, 0, 0) }
func (m *Ping) Parse(b []byte) error {
	_, err := fixedBody(b, MsgPing, 0)
	return err
}
