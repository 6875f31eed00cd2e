package wire

import (
	"bytes"
	"errors"
	"testing"
)

func sampleHeader() Header {
	return Header{
		Flags:        FlagKeyPhase | FlagSpin,
		Channel:      7,
		Destination:  MakePeerID(AuthTag{1, 2, 3, 4}, 0x0a0b0c0d),
		Source:       MakePeerID(AuthTag{5, 6, 7, 8}, 42),
		PacketNumber: 0x0102030405060708,
	}
}

func TestHeaderLayout(t *testing.T) {
	h := sampleHeader()
	h.Length = 0x1234
	b := h.Append(nil)
	if len(b) != HeaderLen || h.Len() != HeaderLen {
		t.Fatalf("len %d, want %d", len(b), HeaderLen)
	}
	if !bytes.Equal(b[OffProtocolID:OffProtocolID+8], ProtocolID[:]) {
		t.Errorf("protocol id % x", b[:8])
	}
	want := map[int]byte{
		OffFlags: 0x06, OffReserved: 0, OffLength: 0x34, OffLength + 1: 0x12,
		OffChannel: 7, OffDestination: 1, OffDestination + 4: 0x0d, OffDestination + 7: 0x0a,
		OffSource: 5, OffSource + 4: 42, OffPacketNumber: 8, OffPacketNumber + 7: 1,
	}
	for off, v := range want {
		if b[off] != v {
			t.Errorf("byte %d = %#x, want %#x", off, b[off], v)
		}
	}
	for _, off := range []int{OffProtocolID, OffDestination, OffSource, OffPacketNumber} {
		if off%8 != 0 {
			t.Errorf("8-byte field at offset %d is not 8-aligned", off)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := sampleHeader()
	b := h.Append(make([]byte, 0, 64))
	var got Header
	if err := got.Parse(b); err != nil {
		t.Fatal(err)
	}
	if got != h {
		t.Fatalf("got %+v, want %+v", got, h)
	}
	PutPacketNumber(b, 99)
	PutLength(b, 1000)
	if err := got.Parse(b); err != nil || got.PacketNumber != 99 || got.Length != 1000 {
		t.Fatalf("after Put: %+v %v", got, err)
	}
}

// TestHeaderSuites: each suite's header starts with its own protocol id,
// and Parse tells them apart; SuiteOf and HasProtocolID agree with it.
func TestHeaderSuites(t *testing.T) {
	for s := Suite(0); s < NumSuites; s++ {
		h := sampleHeader()
		h.Suite = s
		b := h.Append(nil)
		id := s.ProtocolID()
		if !bytes.Equal(b[:8], id[:]) {
			t.Errorf("%v: header starts % x, want % x", s, b[:8], id)
		}
		var got Header
		if err := got.Parse(b); err != nil || got != h {
			t.Errorf("%v: parsed %+v, %v; want %+v", s, got, err, h)
		}
		if gs, ok := SuiteOf(b); !ok || gs != s || !HasProtocolID(b) {
			t.Errorf("%v: SuiteOf = %v, %v", s, gs, ok)
		}
		if s.Construction() == "" || s.String() == "unknown suite" || !s.Valid() {
			t.Errorf("suite %d unnamed", s)
		}
	}
	if SuiteChaChaPoly.ProtocolID() == SuiteAESGCM.ProtocolID() ||
		SuiteChaChaPoly.AuthTag(PublicKey{1}) == SuiteAESGCM.AuthTag(PublicKey{1}) {
		t.Fatal("suites share an id or a tag")
	}
	if SuiteChaChaPoly.AuthTag(PublicKey{1}) != AuthTagOf(PublicKey{1}) {
		t.Fatal("AuthTagOf is not the first suite's tag")
	}
	if _, ok := SuiteOf(ProtocolIDAESGCM[:7]); ok || Suite(NumSuites).Valid() {
		t.Fatal("SuiteOf accepts a short id, or an unknown suite is valid")
	}
}

func TestHeaderRejects(t *testing.T) {
	good := sampleHeader()
	hs := Header{Flags: FlagHandshake, Destination: good.Destination, Source: good.Source}
	tests := []struct {
		name string
		mod  func([]byte) []byte
		want error
	}{
		{"empty", func(b []byte) []byte { return nil }, ErrShortPacket},
		{"short", func(b []byte) []byte { return b[:HeaderLen-1] }, ErrShortPacket},
		{"protocol id", func(b []byte) []byte { b[3] ^= 1; return b }, ErrProtocolID},
		{"reserved byte", func(b []byte) []byte { b[OffReserved] = 1; return b }, ErrHeaderInvalid},
		{"unknown flag", func(b []byte) []byte { b[OffFlags] |= 0x80; return b }, ErrHeaderInvalid},
		{"handshake on channel", func(b []byte) []byte {
			b = hs.Append(b[:0])
			b[OffChannel] = 1
			return b
		}, ErrHandshakeForm},
		{"handshake with packet number", func(b []byte) []byte {
			b = hs.Append(b[:0])
			b[OffPacketNumber] = 1
			return b
		}, ErrHandshakeForm},
		{"handshake with key phase", func(b []byte) []byte {
			b = hs.Append(b[:0])
			b[OffFlags] |= byte(FlagKeyPhase)
			return b
		}, ErrHandshakeForm},
	}
	for _, tt := range tests {
		b := tt.mod(good.Append(nil))
		var h Header
		if err := h.Parse(b); !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
	var h Header
	if err := h.Parse(hs.Append(nil)); err != nil || !h.IsHandshake() {
		t.Errorf("valid handshake header: %v", err)
	}
}

func TestProtocolIDDerivation(t *testing.T) {
	// SHA-256("haven/1" || 0x00 || "Noise_IK_25519_ChaChaPoly_BLAKE2s")[:8],
	// as printed in docs/PROTOCOL.md §2.
	want := [8]byte{0x8e, 0x88, 0x4a, 0xcd, 0xef, 0x46, 0x18, 0xf2}
	if ProtocolID != want {
		t.Fatalf("ProtocolID % x, want % x", ProtocolID, want)
	}
	if computeProtocolID("haven/2", Construction) == ProtocolID {
		t.Fatal("a different version gives the same id")
	}
	if !HasProtocolID(ProtocolID[:]) || HasProtocolID(ProtocolID[:7]) {
		t.Fatal("HasProtocolID")
	}
}

func TestHeaderAllocs(t *testing.T) {
	h := sampleHeader()
	buf := make([]byte, 0, HeaderLen)
	var out Header
	n := testing.AllocsPerRun(1000, func() {
		b := h.Append(buf[:0])
		if err := out.Parse(b); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per header append+parse, want 0", n)
	}
}
