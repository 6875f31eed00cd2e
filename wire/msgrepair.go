package wire

// DATAGRAM_REPAIR carries one repair symbol of a group of datagrams on a
// datagram channel (docs/PROTOCOL.md §5.11, FEC scheme 1).
const MsgDatagramRepair MsgID = 0x32

// FEC scheme 1 bounds (PROTOCOL.md §5.11).
const (
	FECParity        uint8 = 1  // the FEC scheme of §5.11
	MaxRepairGroup         = 64 // datagrams in a group, K
	MaxRepairSymbols       = 16 // repair symbols of a group, R
	// MaxProtectedDatagram is the largest datagram a group holds: its
	// repair symbol (2 bytes more) fills a DATAGRAM_REPAIR in a packet of
	// DefaultPacketSize, so groups fit any path and a receiver's memory
	// for them stays small.
	MaxProtectedDatagram = DefaultPacketSize - HeaderLen - TagLen - MsgHeaderLen - repairHeaderLen - 2
)

// Repair body layout: K, R, r, a reserved zero byte, then the symbol.
const (
	repairOffK      = 0
	repairOffR      = 1
	repairOffIndex  = 2
	repairOffZero   = 3
	repairHeaderLen = 4
)

// DatagramRepair is DATAGRAM_REPAIR: repair symbol Index of the group of
// Group datagrams whose first sequence number's low 32 bits are First
// (the argument), the group having Repairs symbols in all. Symbol holds
// at least 2 bytes (a recovered datagram's length field).
type DatagramRepair struct {
	First   uint32
	Group   uint8 // K, 1 … MaxRepairGroup
	Repairs uint8 // R, 1 … MaxRepairSymbols
	Index   uint8 // r < R
	Symbol  []byte
}

func (m *DatagramRepair) Len() int { return MsgHeaderLen + repairHeaderLen + len(m.Symbol) }

func (m *DatagramRepair) Append(b []byte) []byte {
	b = appendHeader(b, MsgDatagramRepair, 0, repairHeaderLen+len(m.Symbol), m.First)
	b = append(b, m.Group, m.Repairs, m.Index, 0)
	return append(b, m.Symbol...)
}

// Parse decodes a DATAGRAM_REPAIR. K, R or r out of range, a nonzero
// reserved byte, or a symbol shorter than 2 bytes or longer than a
// datagram's symbol can be is ErrMessageBody. Symbol aliases b.
func (m *DatagramRepair) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgDatagramRepair, 0)
	if err != nil {
		return err
	}
	if len(body) < repairHeaderLen+2 || len(body) > repairHeaderLen+2+MaxDatagramSize {
		return ErrMessageBody
	}
	k, r, i := body[repairOffK], body[repairOffR], body[repairOffIndex]
	if k == 0 || k > MaxRepairGroup || r == 0 || r > MaxRepairSymbols || i >= r || body[repairOffZero] != 0 {
		return ErrMessageBody
	}
	*m = DatagramRepair{First: h.Arg, Group: k, Repairs: r, Index: i, Symbol: body[repairHeaderLen:]}
	return nil
}
