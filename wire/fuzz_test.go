package wire

import (
	"bytes"
	"testing"
)

// FuzzHeader: Parse never panics, and a header it accepts re-encodes to the
// same 40 bytes (the encoding is canonical).
func FuzzHeader(f *testing.F) {
	h := sampleHeader()
	f.Add(h.Append(nil))
	hs := Header{Flags: FlagHandshake, Source: h.Source}
	f.Add(hs.Append(nil))
	f.Add(ProtocolID[:])
	ha := h
	ha.Suite = SuiteAESGCM
	f.Add(ha.Append(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		if err := h.Parse(b); err != nil {
			return
		}
		if got := h.Append(nil); !bytes.Equal(got, b[:HeaderLen]) {
			t.Fatalf("re-encoded header differs:\n% x\n% x", got, b[:HeaderLen])
		}
		if h.IsHandshake() && (h.Channel != 0 || h.PacketNumber != 0) {
			t.Fatal("handshake form not enforced")
		}
	})
}

// parseMessage decodes one message by id into its typed form.
func parseMessage(raw []byte) (wireMessage, error) {
	var m wireMessage
	switch MsgID(raw[0]) {
	case MsgAck:
		m = &Ack{}
	case MsgPing:
		m = &Ping{}
	case MsgClose:
		m = &Close{}
	case MsgMaxData:
		m = &MaxData{}
	case MsgBlocked:
		m = &Blocked{}
	case MsgMaxChannels:
		m = &MaxChannels{}
	case MsgPathChallenge:
		m = &PathChallenge{}
	case MsgPathResponse:
		m = &PathResponse{}
	case MsgAddress:
		m = &AdvertiseAddress{}
	case MsgAddressRetire:
		m = &RetireAddress{}
	case MsgOpen:
		m = &Open{}
	case MsgAccept:
		m = &Accept{}
	case MsgRefuse:
		m = &Refuse{}
	case MsgReset:
		m = &Reset{}
	case MsgStream:
		m = &Stream{}
	case MsgDatagram:
		m = &Datagram{}
	case MsgDatagramRepair:
		m = &DatagramRepair{}
	case MsgHandshakeInit:
		m = &HandshakeInit{}
	case MsgHandshakeResponse:
		m = &HandshakeResponse{}
	case MsgCookieReply:
		m = &CookieReply{}
	default:
		return nil, ErrUnknownMessage
	}
	return m, m.Parse(raw)
}

// FuzzPacket walks a packet full of messages with every alignment. Nothing
// panics; every message that parses re-encodes to its exact bytes; and a
// packet rebuilt from the parsed messages walks to the same messages.
func FuzzPacket(f *testing.F) {
	for _, align := range []uint8{0, 3, 4} {
		f.Add(align, buildPacket(sampleHeader(), 1<<align, transportSamples()...))
	}
	f.Add(uint8(3), buildPacket(Header{Flags: FlagHandshake}, 8, &HandshakeInit{}))
	f.Add(uint8(0), sampleHeaderValue.Append(nil))
	f.Fuzz(func(t *testing.T, alignLog2 uint8, pkt []byte) {
		align := 1 << (alignLog2 % 5)
		var r MessageReader
		r.Reset(pkt, align)
		var parsed []wireMessage
		for r.Next() {
			raw := r.Message()
			if r.Offset() < HeaderLen || r.Offset()+len(raw) > len(pkt) {
				t.Fatalf("message at %d+%d outside packet of %d", r.Offset(), len(raw), len(pkt))
			}
			if (r.Offset()+MsgHeaderLen)%align != 0 {
				t.Fatalf("body at %d not aligned to %d", r.Offset()+MsgHeaderLen, align)
			}
			m, err := parseMessage(raw)
			if err != nil {
				continue
			}
			if m.Len() != len(raw) {
				t.Fatalf("%T: Len %d, raw %d", m, m.Len(), len(raw))
			}
			if got := m.Append(nil); !bytes.Equal(got, raw) {
				t.Fatalf("%T re-encodes differently:\n% x\n% x", m, got, raw)
			}
			parsed = append(parsed, m)
		}
		if r.Err() != nil || len(pkt) < HeaderLen {
			return
		}
		rebuilt := pkt[:HeaderLen:HeaderLen]
		for _, m := range parsed {
			rebuilt = m.Append(AppendAlign(rebuilt, align))
		}
		r.Reset(rebuilt, align)
		i := 0
		for r.Next() {
			if i >= len(parsed) || !bytes.Equal(r.Message(), parsed[i].Append(nil)) {
				t.Fatalf("rebuilt packet differs at message %d", i)
			}
			i++
		}
		if r.Err() != nil || i != len(parsed) {
			t.Fatalf("rebuilt packet: %d of %d messages, %v", i, len(parsed), r.Err())
		}
	})
}

// FuzzSessionParams: parameters that parse re-encode byte for byte.
func FuzzSessionParams(f *testing.F) {
	p := InitPayload{Time: Timestamp{Seconds: 1e9, Nanos: 5}, Params: SessionParams{
		MaxPacketSize: DefaultPacketSize, AlignLog2: 3, MaxChannels: 100,
		ChannelWindow: 1 << 20, IdleTimeoutMs: 30000, SessionWindow: 1 << 24}}
	f.Add(p.Append(nil))
	f.Add(make([]byte, InitPayloadLen))
	p.Service = ServiceHint("echo")
	f.Add(p.Append(nil))
	r := RespPayload{Params: p.Params, Flags: RespServiceServed}
	f.Add(r.Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p InitPayload
		if err := p.Parse(b); err == nil {
			if got := p.Append(nil); !bytes.Equal(got, b) {
				t.Fatalf("payload re-encodes differently:\n% x\n% x", got, b)
			}
		}
		var r RespPayload
		if err := r.Parse(b); err == nil {
			if got := r.Append(nil); !bytes.Equal(got, b) {
				t.Fatalf("response payload re-encodes differently:\n% x\n% x", got, b)
			}
		}
		var q SessionParams
		if err := q.Parse(b); err == nil {
			if got := q.Append(nil); !bytes.Equal(got, b[:SessionParamsLen]) {
				t.Fatalf("params re-encode differently")
			}
		}
	})
}
