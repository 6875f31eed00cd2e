package noise

import (
	"bytes"
	"errors"
	"testing"
)

// mixPair returns a fresh initiator and responder of one IK handshake.
func mixPair(t *testing.T) (ini, resp *HandshakeState) {
	t.Helper()
	is, rs := mustGenerate(t), mustGenerate(t)
	ini, err := NewInitiator(Config{Static: is, RemoteStatic: rs.PublicKey(), Prologue: []byte("haven/1")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = NewResponder(Config{Static: rs, Prologue: []byte("haven/1")})
	if err != nil {
		t.Fatal(err)
	}
	return ini, resp
}

func mustMix(t *testing.T, hs *HandshakeState, data string) {
	t.Helper()
	if err := hs.MixHash([]byte(data)); err != nil {
		t.Fatalf("MixHash(%q): %v", data, err)
	}
}

// TestMixHashSameData: both sides mixing the same data before each message
// complete the handshake, with a handshake hash that differs from the one
// of the same handshake without the data, and working transport keys.
func TestMixHashSameData(t *testing.T) {
	ini, resp := mixPair(t)
	mustMix(t, ini, "header 1")
	mustMix(t, ini, "more")
	m1, err := ini.WriteMessage(nil, []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	mustMix(t, resp, "header 1")
	mustMix(t, resp, "more")
	if p, err := resp.ReadMessage(nil, m1); err != nil || string(p) != "one" {
		t.Fatalf("message 1: %q %v", p, err)
	}
	mustMix(t, resp, "header 2")
	m2, err := resp.WriteMessage(nil, []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	mustMix(t, ini, "header 2")
	if p, err := ini.ReadMessage(nil, m2); err != nil || string(p) != "two" {
		t.Fatalf("message 2: %q %v", p, err)
	}
	if !bytes.Equal(ini.HandshakeHash(), resp.HandshakeHash()) {
		t.Fatal("handshake hashes differ")
	}
	iSend, iRecv, err := ini.Split()
	if err != nil {
		t.Fatal(err)
	}
	rSend, rRecv, err := resp.Split()
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := iSend.EncryptWithAd(nil, nil, []byte("ping"))
	if p, err := rRecv.DecryptWithAd(nil, nil, ct); err != nil || string(p) != "ping" {
		t.Fatalf("ping: %q %v", p, err)
	}
	ct, _ = rSend.EncryptWithAd(nil, nil, []byte("pong"))
	if p, err := iRecv.DecryptWithAd(nil, nil, ct); err != nil || string(p) != "pong" {
		t.Fatalf("pong: %q %v", p, err)
	}
}

// TestMixHashChangesHash: MixHash is h = HASH(h || data), and an empty
// mix still changes h.
func TestMixHashChangesHash(t *testing.T) {
	ini, _ := mixPair(t)
	before := ini.HandshakeHash()
	mustMix(t, ini, "")
	if bytes.Equal(before, ini.HandshakeHash()) {
		t.Fatal("MixHash of empty data left h unchanged")
	}
	var ref SymmetricState
	ref.init(DefaultSuite, nil)
	copy(ref.h[:], ini.HandshakeHash())
	ref.MixHash([]byte("x"))
	mustMix(t, ini, "x")
	if !bytes.Equal(ini.HandshakeHash(), ref.GetHandshakeHash()) {
		t.Fatal("MixHash is not h = HASH(h || data)")
	}
}

// TestMixHashMismatchMessage1: different data before message 1 makes the
// responder reject it; the failed read undoes the responder's mix, so the
// right data then succeeds.
func TestMixHashMismatchMessage1(t *testing.T) {
	ini, resp := mixPair(t)
	mustMix(t, ini, "header A")
	m1, err := ini.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h0 := resp.HandshakeHash()
	mustMix(t, resp, "header B")
	if _, err := resp.ReadMessage(nil, m1); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("message 1 with different data: %v, want ErrDecrypt", err)
	}
	if !bytes.Equal(resp.HandshakeHash(), h0) {
		t.Fatal("failed ReadMessage left the mix in h")
	}
	// A missing mix fails too.
	if _, err := resp.ReadMessage(nil, m1); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("message 1 without the data: %v, want ErrDecrypt", err)
	}
	mustMix(t, resp, "header A")
	if _, err := resp.ReadMessage(nil, m1); err != nil {
		t.Fatalf("message 1 with the same data after a failure: %v", err)
	}
}

// TestMixHashMismatchMessage2: the same for message 2, on the initiator,
// which must survive a forged message 2 and complete with the genuine one.
func TestMixHashMismatchMessage2(t *testing.T) {
	ini, resp := mixPair(t)
	m1, err := ini.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resp.ReadMessage(nil, m1); err != nil {
		t.Fatal(err)
	}
	mustMix(t, resp, "header 2")
	m2, err := resp.WriteMessage(nil, []byte("params"))
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{"header X", "header 2 ", ""} {
		mustMix(t, ini, data)
		if _, err := ini.ReadMessage(nil, m2); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("message 2 with data %q: %v, want ErrDecrypt", data, err)
		}
	}
	// Two pending mixes are undone together as well.
	mustMix(t, ini, "header")
	mustMix(t, ini, " 2")
	if _, err := ini.ReadMessage(nil, m2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("message 2 with split data: %v, want ErrDecrypt", err)
	}
	mustMix(t, ini, "header 2")
	if p, err := ini.ReadMessage(nil, m2); err != nil || string(p) != "params" {
		t.Fatalf("genuine message 2 after failures: %q %v", p, err)
	}
	if !bytes.Equal(ini.HandshakeHash(), resp.HandshakeHash()) {
		t.Fatal("handshake hashes differ")
	}
}

// TestMixHashFailedWrite: a WriteMessage that fails undoes the mixes made
// for it too.
func TestMixHashFailedWrite(t *testing.T) {
	ini, _ := mixPair(t)
	h0 := ini.HandshakeHash()
	mustMix(t, ini, "header")
	if _, err := ini.WriteMessage(nil, make([]byte, MaxMessageLen)); !errors.Is(err, ErrMessageTooLong) {
		t.Fatalf("oversized write: %v", err)
	}
	if !bytes.Equal(ini.HandshakeHash(), h0) {
		t.Fatal("failed WriteMessage left the mix in h")
	}
}

// TestMixHashAfterCompletion: MixHash fails once both messages are done,
// and after Split.
func TestMixHashAfterCompletion(t *testing.T) {
	ini, resp := mixPair(t)
	m1, err := ini.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resp.ReadMessage(nil, m1); err != nil {
		t.Fatal(err)
	}
	m2, err := resp.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ini.ReadMessage(nil, m2); err != nil {
		t.Fatal(err)
	}
	for _, hs := range []*HandshakeState{ini, resp} {
		h := hs.HandshakeHash()
		if err := hs.MixHash([]byte("late")); !errors.Is(err, ErrHandshakeComplete) {
			t.Errorf("MixHash after the last message: %v, want ErrHandshakeComplete", err)
		}
		if _, _, err := hs.Split(); err != nil {
			t.Fatal(err)
		}
		if err := hs.MixHash([]byte("late")); !errors.Is(err, ErrAlreadySplit) {
			t.Errorf("MixHash after Split: %v, want ErrAlreadySplit", err)
		}
		if !bytes.Equal(hs.HandshakeHash(), h) {
			t.Error("a refused MixHash changed h")
		}
	}
}

// TestMixHashAllocs: MixHash allocates nothing.
func TestMixHashAllocs(t *testing.T) {
	ini, _ := mixPair(t)
	data := make([]byte, 40)
	allocs := testing.AllocsPerRun(1000, func() {
		if err := ini.MixHash(data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("MixHash: %v allocations, want 0", allocs)
	}
}
