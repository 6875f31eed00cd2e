package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// wireMessage is the idiom every message type follows.
type wireMessage interface {
	Len() int
	Append([]byte) []byte
	Parse([]byte) error
}

// sampleMessages has one or more instances of every message type.
func sampleMessages() []wireMessage {
	return []wireMessage{
		&Ack{Delay: 250, Ranges: []AckRange{{Smallest: 90, Largest: 100}}},
		&Ack{Delay: 0, Ranges: []AckRange{{95, 100}, {80, 90}, {0, 78}}},
		&Ping{},
		&Close{Code: CloseRestarting, Reason: []byte("restarting")},
		&Close{Code: CloseNormal, Reason: []byte{}},
		&MaxData{Max: 1 << 40},
		&Blocked{Limit: 65536},
		&MaxChannels{Max: 100},
		&PathChallenge{Data: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}},
		&PathResponse{Data: [8]byte{8, 7, 6, 5, 4, 3, 2, 1}},
		&AdvertiseAddress{Seq: 1, Addr: netip.MustParseAddrPort("192.0.2.7:4433")},
		&AdvertiseAddress{Seq: 2, Addr: netip.MustParseAddrPort("[2001:db8::7]:4433")},
		&RetireAddress{Seq: 1},
		&Open{Type: ChannelStream, Priority: 3, Window: 1 << 20, Service: []byte("http")},
		&Open{Type: ChannelDatagram, Priority: 0, Service: []byte{}},
		&Accept{Window: 1 << 16},
		&Refuse{Code: RefuseNoService, Reason: []byte(`no service "ftp"`)},
		&Reset{Code: 9, FinalSize: 12345},
		&Stream{Offset: 0xfffffff0, Fin: true, Data: []byte("hello")},
		&Stream{Offset: 0, Data: []byte{}},
		&Datagram{Seq: 5, Data: []byte("tick"), Total: 4},
		&Datagram{Seq: 6, Fragmented: true, Total: 3000, FragOffset: 1400, Data: bytes.Repeat([]byte{7}, 1400)},
		&DatagramRepair{First: 64, Group: 8, Repairs: 1, Index: 0, Symbol: []byte{4, 0, 't', 'i', 'c', 'k'}},
		&DatagramRepair{First: 0xfffffff0, Group: 64, Repairs: 16, Index: 15, Symbol: bytes.Repeat([]byte{9}, 1202)},
		&HandshakeInit{Ephemeral: [32]byte{1}, MAC2: [16]byte{2}},
		&HandshakeResponse{Ephemeral: [32]byte{3}, MAC1: [16]byte{4}},
		&CookieReply{Nonce: [24]byte{5}, Cookie: [32]byte{6}},
	}
}

// transportSamples is sampleMessages without the handshake messages: what
// transport packets carry.
func transportSamples() []wireMessage {
	var out []wireMessage
	for _, m := range sampleMessages() {
		switch m.(type) {
		case *HandshakeInit, *HandshakeResponse, *CookieReply:
		default:
			out = append(out, m)
		}
	}
	return out
}

// fresh returns a zero value of m's type.
func fresh(m wireMessage) wireMessage {
	return reflect.New(reflect.TypeOf(m).Elem()).Interface().(wireMessage)
}

// TestDatagramRepairBounds: DATAGRAM_REPAIR's K, R and index ranges, its
// reserved byte and its symbol length are checked.
func TestDatagramRepairBounds(t *testing.T) {
	ok := DatagramRepair{First: 1, Group: 8, Repairs: 2, Index: 1, Symbol: []byte{1, 0, 7}}
	for _, tc := range []struct {
		name string
		edit func(b []byte)
	}{
		{"K 0", func(b []byte) { b[MsgHeaderLen+repairOffK] = 0 }},
		{"K 65", func(b []byte) { b[MsgHeaderLen+repairOffK] = MaxRepairGroup + 1 }},
		{"R 0", func(b []byte) { b[MsgHeaderLen+repairOffR] = 0 }},
		{"R 17", func(b []byte) { b[MsgHeaderLen+repairOffR] = MaxRepairSymbols + 1 }},
		{"index R", func(b []byte) { b[MsgHeaderLen+repairOffIndex] = 2 }},
		{"reserved", func(b []byte) { b[MsgHeaderLen+repairOffZero] = 1 }},
	} {
		b := ok.Append(nil)
		tc.edit(b)
		var m DatagramRepair
		if err := m.Parse(b); err != ErrMessageBody {
			t.Errorf("%s: Parse: %v, want ErrMessageBody", tc.name, err)
		}
	}
	short := ok
	short.Symbol = []byte{1}
	var m DatagramRepair
	if err := m.Parse(short.Append(nil)); err != ErrMessageBody {
		t.Errorf("1-byte symbol: %v", err)
	}
	if err := m.Parse(ok.Append(nil)); err != nil || m.Index != 1 || len(m.Symbol) != 3 {
		t.Errorf("valid repair: %v, %+v", err, m)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b := m.Append([]byte{0xee}) // appends after existing bytes
		if len(b)-1 != m.Len() {
			t.Errorf("%T: Append wrote %d bytes, Len says %d", m, len(b)-1, m.Len())
		}
		got := fresh(m)
		if err := got.Parse(b[1:]); err != nil {
			t.Errorf("%T: Parse: %v", m, err)
			continue
		}
		if again := got.Append(nil); !bytes.Equal(again, b[1:]) {
			t.Errorf("%T: re-encoding differs:\n% x\n% x", m, again, b[1:])
		}
		if !reflect.DeepEqual(normalize(got), normalize(m)) {
			t.Errorf("%T: parsed %+v, want %+v", m, got, m)
		}
	}
}

// normalize maps nil and empty byte slices together for comparison.
func normalize(m wireMessage) wireMessage {
	v := reflect.ValueOf(m).Elem()
	out := reflect.New(v.Type())
	out.Elem().Set(v)
	for i := 0; i < v.NumField(); i++ {
		f := out.Elem().Field(i)
		if f.Kind() == reflect.Slice && f.Len() == 0 {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return out.Interface().(wireMessage)
}

func TestMessageRejectsTruncation(t *testing.T) {
	for _, m := range sampleMessages() {
		b := m.Append(nil)
		for n := 0; n < len(b); n++ {
			if err := fresh(m).Parse(b[:n]); err == nil {
				t.Errorf("%T: a %d-byte prefix of %d parsed", m, n, len(b))
			}
		}
	}
}

func TestMessageRejectsWrongID(t *testing.T) {
	for _, m := range sampleMessages() {
		b := m.Append(nil)
		b[OffMsgID] ^= 0x40
		if err := fresh(m).Parse(b); !errors.Is(err, ErrMessageID) {
			t.Errorf("%T with id %#x: %v", m, b[0], err)
		}
	}
}

func TestMessageRejectsHostile(t *testing.T) {
	mod := func(m wireMessage, f func([]byte)) []byte {
		b := m.Append(nil)
		f(b)
		return b
	}
	cases := []struct {
		name string
		m    wireMessage
		b    []byte
	}{
		{"ack below zero", &Ack{}, mod(&Ack{Ranges: []AckRange{{5, 10}, {0, 2}}}, func(b []byte) { b[8+16] = 50 })},
		{"ack first range above largest", &Ack{}, mod(&Ack{Ranges: []AckRange{{5, 10}}}, func(b []byte) { b[8+8] = 11 })},
		{"ack reserved", &Ack{}, mod(&Ack{Ranges: []AckRange{{5, 10}}}, func(b []byte) { b[8+12] = 1 })},
		{"ack odd length", &Ack{}, append(mod(&Ack{Ranges: []AckRange{{5, 10}}}, func(b []byte) { b[2] += 4 }), 0, 0, 0, 0)},
		{"ping with body", &Ping{}, []byte{byte(MsgPing), 0, 1, 0, 0, 0, 0, 0, 9}},
		{"ping with arg", &Ping{}, []byte{byte(MsgPing), 0, 0, 0, 1, 0, 0, 0}},
		{"ping with flags", &Ping{}, []byte{byte(MsgPing), 1, 0, 0, 0, 0, 0, 0}},
		{"close reason too long", &Close{}, mod(&Close{Reason: make([]byte, MaxReasonLen)}, func(b []byte) {}) /* fixed below */},
		{"open bad type", &Open{}, mod(&Open{Type: ChannelStream}, func(b []byte) { b[8] = 9 })},
		{"open reserved", &Open{}, mod(&Open{Type: ChannelStream}, func(b []byte) { b[8+2] = 1 })},
		{"stream unknown flag", &Stream{}, mod(&Stream{}, func(b []byte) { b[1] = 2 })},
		{"fragment beyond total", &Datagram{}, mod(&Datagram{Fragmented: true, Total: 10, FragOffset: 8, Data: []byte{1, 2}}, func(b []byte) { b[8+4] = 9 })},
		{"fragment total too large", &Datagram{}, mod(&Datagram{Fragmented: true, Total: 10, Data: []byte{1}}, func(b []byte) { b[8+2] = 0xff })},
		{"empty fragment", &Datagram{}, []byte{byte(MsgDatagram), 1, 8, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0}},
		{"init wrong size", &HandshakeInit{}, mod(&HandshakeInit{}, func(b []byte) { b[2]-- })},
		{"length past end", &Stream{}, []byte{byte(MsgStream), 0, 9, 0, 0, 0, 0, 0, 1}},
	}
	// The over-long reason needs a body longer than Append would write.
	long := appendHeader(nil, MsgClose, 0, MaxReasonLen+1, 0)
	cases[7].b = append(long, make([]byte, MaxReasonLen+1)...)
	for _, c := range cases {
		if err := c.m.Parse(c.b); err == nil {
			t.Errorf("%s: parsed", c.name)
		}
	}
}

func TestAckEncodeLimits(t *testing.T) {
	// Ranges that break the rules are dropped from the encoding, not sent.
	a := Ack{Ranges: []AckRange{{10, 20}, {9, 9}}} // gap of zero packets
	var got Ack
	if err := got.Parse(a.Append(nil)); err != nil || len(got.Ranges) != 1 {
		t.Fatalf("adjacent range encoded: %+v %v", got, err)
	}
	if (&Ack{}).Len() != 0 || len((&Ack{}).Append(nil)) != 0 {
		t.Fatal("empty ack encodes")
	}
	huge := Ack{Ranges: []AckRange{{0, 1 << 33}}}
	if huge.Len() != 0 {
		t.Fatal("first range wider than 32 bits encodes")
	}
}

// TestAckParseStorage: Parse decodes into the storage the caller gives,
// without allocating, and allocates once when that is too small; either
// way it decodes the same ranges.
func TestAckParseStorage(t *testing.T) {
	want := Ack{Delay: 7, Ranges: []AckRange{{95, 100}, {80, 90}, {60, 70}, {0, 50}}}
	msg := want.Append(nil)
	var store [4]AckRange
	var got Ack
	got.Ranges = store[:0]
	if n := testing.AllocsPerRun(100, func() {
		if err := got.Parse(msg); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Parse into room for every range: %v allocations, want 0", n)
	}
	if &got.Ranges[0] != &store[0] || !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %+v, want %+v in the caller's storage", got, want)
	}
	small := Ack{Ranges: store[:0:2]}
	if n := testing.AllocsPerRun(100, func() {
		small.Ranges = store[:0:2]
		if err := small.Parse(msg); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Fatalf("Parse into room for 2 of 4 ranges: %v allocations, want 1", n)
	}
	if !reflect.DeepEqual(small, want) {
		t.Fatalf("parsed %+v, want %+v", small, want)
	}
}

func TestFullStreamOffset(t *testing.T) {
	const w = 1 << 32
	tests := []struct {
		expected uint64
		low      uint32
		want     uint64
	}{
		{0, 0, 0},
		{0, 100, 100},
		{100, 50, 50},
		{w - 10, 5, w + 5},          // wrapped forward
		{w + 5, 0xfffffff0, w - 16}, // retransmission just below a wrap
		{5 * w, 0, 5 * w},           //
		{5*w + 1<<30, 1 << 30, 5*w + 1<<30},
		{3*w + 10, 1<<31 + 9, 3*w + 1<<31 + 9},   // just under half above
		{3*w + 10, 1<<31 + 10, 3*w + 1<<31 + 10}, // exactly half above
		{3*w + 10, 1<<31 + 11, 2*w + 1<<31 + 11}, // just over half above: below
		{^uint64(0) - 5, 0, ^uint64(0) &^ (w - 1)},
	}
	for _, tt := range tests {
		if got := FullStreamOffset(tt.expected, tt.low); got != tt.want {
			t.Errorf("FullStreamOffset(%#x, %#x) = %#x, want %#x", tt.expected, tt.low, got, tt.want)
		}
	}
	// Property: every offset within a window of the expected one round-trips.
	for _, e := range []uint64{0, 1 << 20, w - 1, w, 7*w + 12345} {
		for d := int64(-MaxStreamWindow); d <= MaxStreamWindow; d += MaxStreamWindow / 64 {
			full := uint64(int64(e) + d)
			if int64(e)+d < 0 {
				continue
			}
			if got := FullStreamOffset(e, uint32(full)); got != full {
				t.Fatalf("expected %#x, offset %#x: got %#x", e, full, got)
			}
		}
	}
}

func TestMessageIDs(t *testing.T) {
	for _, m := range sampleMessages() {
		id := MsgID(m.Append(nil)[0])
		optional := id == MsgAddress || id == MsgAddressRetire // §6.6.2: skippable by who lacks them
		if !id.Known() || id.Ignorable() != optional || strings.HasPrefix(id.String(), "MSG_") {
			t.Errorf("%T: id %v", m, id)
		}
	}
	if MsgID(0x7f).Known() || MsgID(0x7f).String() != "MSG_0x7f" || !MsgID(0x90).Ignorable() {
		t.Error("unknown ids")
	}
	if !MsgPadding.Known() {
		t.Error("padding unknown")
	}
}
