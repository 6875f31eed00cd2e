package wire

import (
	"bytes"
	"testing"
)

// datagramCreditPacket is a datagram channel's first packet with its flow
// control (PROTOCOL.md §5.10): OPEN granting 218 datagrams, a MAX_DATA
// raising the limit, a BLOCKED at the peer's limit, and a datagram.
func datagramCreditPacket(align int) []byte {
	h := Header{Channel: 2, PacketNumber: 7}
	return buildPacket(h, align,
		&Open{Type: ChannelDatagram, Priority: 3, Window: 218, Service: []byte("telemetry")},
		&MaxData{Max: 1<<32 + 5},
		&Blocked{Limit: InitialDatagramLimit},
		&Datagram{Seq: 17, Data: []byte("tick")})
}

// TestDatagramCreditMessages: the datagram credit messages round-trip
// byte for byte and are allowed on a datagram channel's packets.
func TestDatagramCreditMessages(t *testing.T) {
	for _, align := range []int{1, 8, 16} {
		pkt := datagramCreditPacket(align)
		var r MessageReader
		r.Reset(pkt, align)
		var ids []MsgID
		for r.Next() {
			if !r.Header().ID.AllowedIn(2, false) {
				t.Fatalf("%v not allowed on channel 2", r.Header().ID)
			}
			m, err := parseMessage(r.Message())
			if err != nil {
				t.Fatalf("%v: %v", r.Header().ID, err)
			}
			if !bytes.Equal(m.Append(nil), r.Message()) {
				t.Fatalf("%T re-encodes differently", m)
			}
			ids = append(ids, r.Header().ID)
		}
		if r.Err() != nil || len(ids) != 4 || ids[1] != MsgMaxData || ids[2] != MsgBlocked {
			t.Fatalf("align %d: messages %v, %v", align, ids, r.Err())
		}
	}
	var m MaxData
	var r MessageReader
	pkt := datagramCreditPacket(8)
	r.Reset(pkt, 8)
	r.Next()
	r.Next()
	if err := m.Parse(r.Message()); err != nil || m.Max != 1<<32+5 {
		t.Fatalf("MAX_DATA: %d, %v", m.Max, err)
	}
}

// TestFullDatagramSeq: 32-bit sequence numbers restore to the 64-bit value
// nearest the expected one, across the wrap.
func TestFullDatagramSeq(t *testing.T) {
	for _, c := range []struct {
		expected uint64
		low      uint32
		want     uint64
	}{
		{0, 0, 0},
		{0, 15, 15},
		{1<<32 - 3, 2, 1<<32 + 2},         // just past the wrap
		{1<<32 + 2, 1<<32 - 3, 1<<32 - 3}, // a late one from before it
		{5 << 32, 1 << 30, 5<<32 + 1<<30},
		{5<<32 + 10, 1<<32 - 1, 5<<32 - 1},
	} {
		if got := FullDatagramSeq(c.expected, c.low); got != c.want {
			t.Errorf("FullDatagramSeq(%#x, %#x) = %#x, want %#x", c.expected, c.low, got, c.want)
		}
	}
}
