package wire

import (
	"errors"
	"testing"
)

func TestServiceHint(t *testing.T) {
	// FNV-1a 32 known answers: the empty string is the offset basis.
	for _, c := range []struct {
		name string
		want uint32
	}{{"", 0x811c9dc5}, {"a", 0xe40c292c}, {"foobar", 0xbf9cf968}} {
		if got := ServiceHint(c.name); got != c.want {
			t.Errorf("ServiceHint(%q) = %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestRespPayload(t *testing.T) {
	p := RespPayload{Params: SessionParams{MaxPacketSize: DefaultPacketSize, AlignLog2: 3, MaxChannels: 1,
		ChannelWindow: 1 << 16, IdleTimeoutMs: 1000, SessionWindow: 1 << 20}, Flags: RespServiceServed}
	b := p.Append(nil)
	if len(b) != RespPayloadLen || p.Len() != RespPayloadLen {
		t.Fatalf("%d bytes, want %d", len(b), RespPayloadLen)
	}
	var q RespPayload
	if err := q.Parse(b); err != nil || q != p {
		t.Fatalf("round trip: %+v, %v", q, err)
	}
	for _, c := range []struct {
		name string
		mut  func([]byte) []byte
	}{
		{"unknown flag", func(b []byte) []byte { b[offRespFlags] |= 2; return b }},
		{"reserved", func(b []byte) []byte { b[offRespReserved+3] = 1; return b }},
		{"short", func(b []byte) []byte { return b[:RespPayloadLen-1] }},
		{"bad params", func(b []byte) []byte { b[offParamAlignLog2] = 9; return b }},
	} {
		bad := c.mut(append([]byte(nil), b...))
		if err := q.Parse(bad); !errors.Is(err, ErrParams) {
			t.Errorf("%s: %v, want ErrParams", c.name, err)
		}
	}
}

func TestInitPayloadService(t *testing.T) {
	p := InitPayload{Time: Timestamp{Seconds: 7, Nanos: 9}, Service: ServiceHint("echo"),
		Params: SessionParams{MaxPacketSize: DefaultPacketSize, MaxChannels: 1, ChannelWindow: 1 << 16,
			IdleTimeoutMs: 1000, SessionWindow: 1 << 20}}
	var q InitPayload
	if err := q.Parse(p.Append(nil)); err != nil || q != p {
		t.Fatalf("round trip: %+v, %v", q, err)
	}
}
