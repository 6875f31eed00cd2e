package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
)

// Known answer for AuthTagOf, computed outside Go with Python's hashlib:
//
//	pid = sha256(b"haven/1\x00Noise_IK_25519_ChaChaPoly_BLAKE2s")[:8]
//	    = 8e884acdef4618f2
//	tag = sha256(b"haven peer id\x00" + pid + alice_pub)[:4]
//	    = a0315dfe
//
// where alice_pub is the RFC 7748 §6.1 public key. A change here is a wire
// format change.
const (
	kaProtocolIDHex = "8e884acdef4618f2"
	kaAuthTagHex    = "a0315dfe"
)

func TestAuthTagKnownAnswer(t *testing.T) {
	if got := hex.EncodeToString(ProtocolID[:]); got != kaProtocolIDHex {
		t.Fatalf("ProtocolID = %s, want %s (the vector below depends on it)", got, kaProtocolIDHex)
	}
	pub := PublicKey(mustHex32(t, rfc7748AlicePubHex))
	got := AuthTagOf(pub)
	if hex.EncodeToString(got[:]) != kaAuthTagHex {
		t.Errorf("AuthTagOf(alice) = %x, want %s", got, kaAuthTagHex)
	}
	if got.String() != kaAuthTagHex {
		t.Errorf("AuthTag.String() = %q", got.String())
	}

	// The same thing by an explicit concatenation.
	var msg []byte
	msg = append(msg, "haven peer id"...)
	msg = append(msg, 0x00)
	msg = append(msg, ProtocolID[:]...)
	msg = append(msg, pub[:]...)
	sum := sha256.Sum256(msg)
	if !bytes.Equal(got[:], sum[:4]) {
		t.Errorf("AuthTagOf = %x, explicit hash %x", got, sum[:4])
	}
}

func TestAuthTagDeterministicAndDistinct(t *testing.T) {
	seen := make(map[AuthTag]PublicKey)
	for i := range 256 {
		var pub PublicKey
		pub[0] = byte(i)
		pub[31] = 0x40
		a, b := AuthTagOf(pub), AuthTagOf(pub)
		if a != b {
			t.Fatalf("AuthTagOf not deterministic for %v", pub)
		}
		// 256 tags of 32 bits: a collision has probability ~1.5e-5 and
		// these inputs are fixed, so any collision is a bug.
		if other, dup := seen[a]; dup {
			t.Fatalf("AuthTagOf(%v) == AuthTagOf(%v) == %v", pub, other, a)
		}
		seen[a] = pub
	}
}

func TestPeerIDLayout(t *testing.T) {
	auth := AuthTag{0x1a, 0x2b, 0x3c, 0x4d}
	id := MakePeerID(auth, 0x2a)
	want := PeerID{0x1a, 0x2b, 0x3c, 0x4d, 0x2a, 0x00, 0x00, 0x00}
	if id != want {
		t.Fatalf("MakePeerID = % x, want % x", id[:], want[:])
	}
	if got := id.String(); got != "1a2b3c4d/0000002a" {
		t.Errorf("String() = %q", got)
	}

	id = MakePeerID(auth, 0x11223344)
	want = PeerID{0x1a, 0x2b, 0x3c, 0x4d, 0x44, 0x33, 0x22, 0x11}
	if id != want {
		t.Fatalf("MakePeerID = % x, want % x (ephemeral little-endian at 4..7)", id[:], want[:])
	}
	if id.Auth() != auth || id.Ephemeral() != 0x11223344 {
		t.Errorf("Auth/Ephemeral = %v/%#x", id.Auth(), id.Ephemeral())
	}
	if got := id.String(); got != "1a2b3c4d/11223344" {
		t.Errorf("String() = %q", got)
	}
	if got := MakePeerID(AuthTag{0xff, 0, 0, 1}, 0xffffffff).String(); got != "ff000001/ffffffff" {
		t.Errorf("String() = %q", got)
	}
	if got := (PeerID{}).String(); got != "00000000/00000000" {
		t.Errorf("zero String() = %q", got)
	}

	if peerIDAuthOffset != 0 || peerIDEphemeralOffset != 4 || PeerIDLen != 8 || AuthTagLen != 4 || peerIDRoutingLen != 0 {
		t.Error("layout constants changed")
	}
}

func TestPeerIDZero(t *testing.T) {
	if !(PeerID{}).IsZero() {
		t.Error("zero id not IsZero")
	}
	if MakePeerID(AuthTag{}, 1).IsZero() || MakePeerID(AuthTag{0, 0, 0, 1}, 0).IsZero() {
		t.Error("non-zero id IsZero")
	}
	// A handshake destination: known auth tag, ephemeral not yet assigned.
	dst := MakePeerID(AuthTagOf(PublicKey(mustHex32(t, rfc7748AlicePubHex))), 0)
	if dst.IsZero() || dst.Ephemeral() != 0 {
		t.Errorf("unassigned destination %v", dst)
	}
}

func TestRandomEphemeral(t *testing.T) {
	seen := make(map[uint32]bool)
	for range 100 {
		e, err := RandomEphemeral()
		if err != nil {
			t.Fatal(err)
		}
		if e == 0 {
			t.Fatal("RandomEphemeral returned 0")
		}
		seen[e] = true
	}
	if len(seen) < 95 {
		t.Errorf("only %d distinct values of 100", len(seen))
	}
}

func TestRandomEphemeralFrom(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    uint32
		wantErr bool
	}{
		{"little-endian", []byte{1, 2, 3, 4}, 0x04030201, false},
		{"skips zero", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0x2a, 0, 0, 0}, 42, false},
		{"short read", []byte{1, 2}, 0, true},
		{"empty", nil, 0, true},
		{"only zeros", make([]byte, 1024), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RandomEphemeralFrom(bytes.NewReader(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %#x, %v; want %#x, err=%v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, err := RandomEphemeralFrom(bytes.NewReader(nil)); !errors.Is(err, io.EOF) {
		t.Errorf("error %v does not wrap io.EOF", err)
	}
}
