package wire

import (
	"encoding/binary"
	"net/netip"
)

// Messages of the optional multi-path sub-protocol (docs/PROTOCOL.md
// §6.6.2), channel 0 only. Their ids carry the ignorable bit: a receiver
// that does not implement them skips them.
const (
	MsgAddress       MsgID = 0x82
	MsgAddressRetire MsgID = 0x83
)

// Address body layout: a family byte (4 or 6), the address in network
// order, the port (little-endian).
const (
	addrOffFamily = 0
	addrOffIP     = 1
	addressLen4   = 1 + 4 + 2
	addressLen6   = 1 + 16 + 2
)

// AdvertiseAddress is ADDRESS: an address the sender also accepts packets
// at; Seq (the argument) names it for RetireAddress. An IPv4 address is
// always carried in the 4-byte form, so the encoding is canonical.
type AdvertiseAddress struct {
	Seq  uint32
	Addr netip.AddrPort
}

func (m *AdvertiseAddress) bodyLen() int {
	if m.Addr.Addr().Unmap().Is4() {
		return addressLen4
	}
	return addressLen6
}

func (m *AdvertiseAddress) Len() int { return MsgHeaderLen + m.bodyLen() }

// Append appends the ADDRESS; an IPv4-mapped IPv6 address goes in the
// IPv4 form.
func (m *AdvertiseAddress) Append(b []byte) []byte {
	ip := m.Addr.Addr().Unmap()
	b = appendHeader(b, MsgAddress, 0, m.bodyLen(), m.Seq)
	if ip.Is4() {
		a := ip.As4()
		b = append(append(b, 4), a[:]...)
	} else {
		a := ip.As16()
		b = append(append(b, 6), a[:]...)
	}
	return binary.LittleEndian.AppendUint16(b, m.Addr.Port())
}

// Parse decodes an ADDRESS. A family other than 4 or 6, a body of the
// wrong length for it, an IPv4-mapped address in the IPv6 form or an
// unspecified address is ErrMessageBody.
func (m *AdvertiseAddress) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgAddress, 0)
	if err != nil {
		return err
	}
	var ip netip.Addr
	switch {
	case len(body) == addressLen4 && body[addrOffFamily] == 4:
		ip = netip.AddrFrom4([4]byte(body[addrOffIP : addrOffIP+4]))
	case len(body) == addressLen6 && body[addrOffFamily] == 6:
		ip = netip.AddrFrom16([16]byte(body[addrOffIP : addrOffIP+16]))
		if ip.Is4In6() {
			return ErrMessageBody
		}
	default:
		return ErrMessageBody
	}
	if ip.IsUnspecified() {
		return ErrMessageBody
	}
	m.Seq, m.Addr = h.Arg, netip.AddrPortFrom(ip, le16(body[len(body)-2:]))
	return nil
}

// RetireAddress is ADDRESS_RETIRE: it withdraws the address of an earlier ADDRESS with the same
// sequence number (the argument); the body is empty.
type RetireAddress struct{ Seq uint32 }

func (m *RetireAddress) Len() int { return MsgHeaderLen }
func (m *RetireAddress) Append(b []byte) []byte {
	return appendHeader(b, MsgAddressRetire, 0, 0, m.Seq)
}
func (m *RetireAddress) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgAddressRetire, 0)
	if err != nil {
		return err
	}
	if len(body) != 0 {
		return ErrMessageBody
	}
	m.Seq = h.Arg
	return nil
}
