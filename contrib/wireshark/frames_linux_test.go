package wireshark

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/havenproto/haven/wire"
)

// Cutting a real capture into Haven packets, independently of the
// dissector, so that the test knows what tshark must show in each frame.

// linkEthernet is LINKTYPE_ETHERNET, what a capture on Linux's loopback
// has (with zero addresses).
const linkEthernet = 1

// wirePacket is one Haven packet of a captured frame.
type wirePacket struct {
	frame    int    // index of the frame that carries it (or, over TCP, completes it)
	raw      []byte // the packet: header, payload, tag
	tcp      bool
	src, dst netip.AddrPort
}

// segment is a frame's IPv4 UDP or TCP segment.
type segment struct {
	tcp      bool
	src, dst netip.AddrPort
	seq      uint32 // TCP
	syn      bool   // TCP
	payload  []byte
}

// parseFrame decodes an Ethernet frame holding IPv4 and UDP or TCP.
func parseFrame(b []byte) (segment, error) {
	var s segment
	if len(b) < 14+20 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return s, fmt.Errorf("not IPv4 over Ethernet (%d bytes)", len(b))
	}
	ip := b[14:]
	ihl := int(ip[0]&15) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0]>>4 != 4 || ihl < 20 || total < ihl || total > len(ip) {
		return s, fmt.Errorf("bad IPv4 header: % x", ip[:20])
	}
	if frag := binary.BigEndian.Uint16(ip[6:]); frag&0x3fff != 0 {
		return s, fmt.Errorf("an IPv4 fragment (%#x)", frag)
	}
	src, _ := netip.AddrFromSlice(ip[12:16])
	dst, _ := netip.AddrFromSlice(ip[16:20])
	l4 := ip[ihl:total]
	switch ip[9] {
	case 17:
		if len(l4) < 8 {
			return s, fmt.Errorf("short UDP header")
		}
		s.payload = l4[8:]
	case 6:
		if len(l4) < 20 || int(l4[12]>>4)*4 < 20 || int(l4[12]>>4)*4 > len(l4) {
			return s, fmt.Errorf("bad TCP header")
		}
		s.tcp = true
		s.seq = binary.BigEndian.Uint32(l4[4:])
		s.syn = l4[13]&0x02 != 0
		s.payload = l4[int(l4[12]>>4)*4:]
	default:
		return s, fmt.Errorf("IP protocol %d", ip[9])
	}
	s.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:]))
	s.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:]))
	return s, nil
}

// havenPackets cuts the frames' payloads into Haven packets. A UDP
// payload is one packet, or a GSO super-datagram of several back to back
// (gsoSplit). A TCP connection's bytes, each way, are put back in order
// from the sequence numbers (a connection starts with its SYN, which the
// capture holds) and cut by the packets' length fields (§8); a packet
// belongs to the frame that completes it, as in Wireshark's reassembly.
// Every payload must be Haven, and every TCP byte stream must end between
// two packets.
func havenPackets(frames []pcapFrame) ([]wirePacket, error) {
	type flow struct {
		next uint32
		buf  []byte
	}
	flows := map[[2]netip.AddrPort]*flow{}
	var out []wirePacket
	for i, f := range frames {
		s, err := parseFrame(f.data)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %v", i+1, err)
		}
		if !s.tcp {
			sizes, err := gsoSplit(s.payload)
			if err != nil {
				return nil, fmt.Errorf("frame %d: %v", i+1, err)
			}
			p := s.payload
			for _, n := range sizes {
				out = append(out, wirePacket{frame: i, raw: p[:n], src: s.src, dst: s.dst})
				p = p[n:]
			}
			continue
		}
		key := [2]netip.AddrPort{s.src, s.dst}
		fl := flows[key]
		if s.syn {
			if fl != nil {
				return nil, fmt.Errorf("frame %d: a second SYN on %v", i+1, key)
			}
			flows[key] = &flow{next: s.seq + 1}
			continue
		}
		if len(s.payload) == 0 {
			continue
		}
		if fl == nil {
			return nil, fmt.Errorf("frame %d: data on %v before its SYN", i+1, key)
		}
		skip := int32(fl.next - s.seq)
		if skip < 0 {
			return nil, fmt.Errorf("frame %d: %v: %d bytes missing before sequence number %d", i+1, key, -skip, s.seq)
		}
		if int(skip) >= len(s.payload) {
			continue // all sent before: a retransmission
		}
		fl.buf = append(fl.buf, s.payload[skip:]...)
		fl.next += uint32(len(s.payload) - int(skip))
		for len(fl.buf) >= wire.HeaderLen {
			if _, ok := wire.SuiteOf(fl.buf); !ok {
				return nil, fmt.Errorf("frame %d: %v: not a Haven packet: % x", i+1, key, fl.buf[:16])
			}
			n := wire.HeaderLen + int(binary.LittleEndian.Uint16(fl.buf[wire.OffLength:]))
			if len(fl.buf) < n {
				break
			}
			out = append(out, wirePacket{frame: i, raw: bytes.Clone(fl.buf[:n]), tcp: true, src: s.src, dst: s.dst})
			fl.buf = fl.buf[n:]
		}
	}
	for key, fl := range flows {
		if len(fl.buf) != 0 {
			return nil, fmt.Errorf("TCP %v ends inside a packet (%d bytes)", key, len(fl.buf))
		}
	}
	return out, nil
}

// gsoSplit returns the sizes of the Haven packets in a UDP payload: one,
// or, for a GSO super-datagram, segments of one size (the last may be
// shorter). A segment starts where the first packet's protocol id,
// destination id and source id (24 bytes) recur; ciphertext matches them
// by chance with probability 2^-192.
func gsoSplit(p []byte) ([]int, error) {
	var h wire.Header
	if err := h.Parse(p); err != nil {
		return nil, fmt.Errorf("not a Haven packet (%v): % x", err, p[:min(len(p), 16)])
	}
	if len(p) < wire.HeaderLen+wire.TagLen {
		return nil, fmt.Errorf("a Haven packet of %d bytes", len(p))
	}
	if h.IsHandshake() {
		return []int{len(p)}, nil // never sent in a GSO write
	}
	same := func(off int) bool {
		return off+wire.HeaderLen <= len(p) && bytes.Equal(p[off:off+8], p[:8]) &&
			bytes.Equal(p[off+wire.OffDestination:off+wire.OffSource+8], p[wire.OffDestination:wire.OffSource+8])
	}
	size := 0
	for off := wire.HeaderLen + wire.TagLen; off+wire.HeaderLen <= len(p); off++ {
		if same(off) {
			size = off
			break
		}
	}
	if size == 0 {
		return []int{len(p)}, nil
	}
	var sizes []int
	for off := 0; off < len(p); off += size {
		n := min(size, len(p)-off)
		if n < wire.HeaderLen+wire.TagLen || !same(off) {
			return nil, fmt.Errorf("GSO super-datagram of %d bytes, segment size %d: no packet at %d", len(p), size, off)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}
