package noise

import (
	"errors"
	"runtime"
	"testing"
)

// maxHandshakeAllocs pins the allocations of one complete IK handshake,
// both sides (two constructors, two messages written and read, two
// Splits), with a cached static-static DH: the two HandshakeStates and the
// four transport AEAD objects (chacha20poly1305.New, one per transport
// key). X25519, hashing, the handshake's own AEAD operations and Split
// allocate nothing (x25519.go, blake2s.go, chachapoly.go), and overlapping
// work on helper goroutines (async.go) adds nothing either: its tasks are
// pooled.
const maxHandshakeAllocs = 6

// TestHandshakeAllocs: a full handshake allocates at most
// maxHandshakeAllocs objects, sequentially (testing.AllocsPerRun runs with
// GOMAXPROCS 1) and with helper goroutines (GOMAXPROCS 2, counted with
// runtime.MemStats; a few more are allowed there for the runtime's own
// background allocations).
func TestHandshakeAllocs(t *testing.T) {
	is, rs := mustGenerate(t), mustGenerate(t)
	iniCfg := Config{Static: is, RemoteStatic: rs.PublicKey(), Prologue: []byte("haven/1")}
	respCfg := Config{Static: rs, Prologue: []byte("haven/1")}
	m1 := make([]byte, 0, 256)
	m2 := make([]byte, 0, 256)
	p := make([]byte, 0, 256)
	run := func() {
		ini, err := NewInitiator(iniCfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := NewResponder(respCfg)
		if err != nil {
			t.Fatal(err)
		}
		if m1, err = ini.WriteMessage(m1[:0], nil); err != nil {
			t.Fatal(err)
		}
		if p, err = resp.ReadMessage(p[:0], m1); err != nil {
			t.Fatal(err)
		}
		if m2, err = resp.WriteMessage(m2[:0], nil); err != nil {
			t.Fatal(err)
		}
		if p, err = ini.ReadMessage(p[:0], m2); err != nil {
			t.Fatal(err)
		}
		if _, _, err = ini.Split(); err != nil {
			t.Fatal(err)
		}
		if _, _, err = resp.Split(); err != nil {
			t.Fatal(err)
		}
	}
	// The race detector drops a quarter of what goes into a sync.Pool,
	// so each of the (up to three) pooled helper tasks may be new.
	slack := 0.0
	if raceEnabled {
		slack = 3
	}
	run() // fills the static-static cache
	allocs := testing.AllocsPerRun(50, run)
	t.Logf("sequential: %v allocations per handshake", allocs)
	if allocs > maxHandshakeAllocs+slack {
		t.Fatalf("handshake: %v allocations, want at most %v", allocs, maxHandshakeAllocs+slack)
	}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for range 10 {
		run() // warm the task pool and the runtime's free goroutines
	}
	const runs = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		run()
	}
	runtime.ReadMemStats(&after)
	par := float64(after.Mallocs-before.Mallocs) / runs
	t.Logf("overlapped: %.1f allocations per handshake", par)
	if par > maxHandshakeAllocs+2+slack {
		t.Fatalf("overlapped handshake: %.1f allocations, want at most %v", par, maxHandshakeAllocs+2+slack)
	}
}

// TestAhead: a handshake whose ephemeral key was generated ahead (and one
// whose responder generated its own ahead) completes with matching keys;
// Discard on an unused Ahead, on the zero Ahead and twice is safe.
func TestAhead(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	is, rs := mustGenerate(t), mustGenerate(t)
	iniSend, iniRecv, respSend, respRecv := handshakePair(t,
		Config{Static: is, RemoteStatic: rs.PublicKey(), Ahead: GenerateAhead()}, Config{Static: rs})
	ct, err := iniSend.EncryptWithAd(nil, nil, []byte("ping"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := respRecv.DecryptWithAd(nil, nil, ct); err != nil || string(pt) != "ping" {
		t.Fatalf("initiator to responder: %q, %v", pt, err)
	}
	ct, _ = respSend.EncryptWithAd(nil, nil, []byte("pong"))
	if pt, err := iniRecv.DecryptWithAd(nil, nil, ct); err != nil || string(pt) != "pong" {
		t.Fatalf("responder to initiator: %q, %v", pt, err)
	}
	a := GenerateAhead()
	if a.t == nil {
		t.Fatal("GenerateAhead with GOMAXPROCS 2 started nothing")
	}
	a.Discard()
	a.Discard()
	var zero Ahead
	zero.Discard()
	// A failed constructor drops its Ahead.
	if _, err := NewInitiator(Config{Static: is, Ahead: GenerateAhead()}); err == nil {
		t.Fatal("initiator without the responder's key accepted")
	}
}

// TestHandshakeInPlace: handshakes run in caller-owned HandshakeStates,
// re-initialized for each new handshake, with SplitInto writing the
// transport keys to the caller's CipherStates, match a NewInitiator /
// NewResponder handshake, and allocate only the transport AEAD objects.
// A state whose Split lent its CipherStates refuses re-initialization.
func TestHandshakeInPlace(t *testing.T) {
	is, rs := mustGenerate(t), mustGenerate(t)
	iniCfg := Config{Static: is, RemoteStatic: rs.PublicKey(), Prologue: []byte("haven/1")}
	respCfg := Config{Static: rs, Prologue: []byte("haven/1")}
	var ini, resp HandshakeState
	var iniSend, iniRecv, respSend, respRecv CipherState
	m1 := make([]byte, 0, 256)
	m2 := make([]byte, 0, 256)
	p := make([]byte, 0, 256)
	hello := []byte("hello")
	run := func() {
		if err := ini.InitInitiator(iniCfg); err != nil {
			t.Fatal(err)
		}
		if err := resp.InitResponder(respCfg); err != nil {
			t.Fatal(err)
		}
		var err error
		if m1, err = ini.WriteMessage(m1[:0], hello); err != nil {
			t.Fatal(err)
		}
		if p, err = resp.ReadMessage(p[:0], m1); err != nil || string(p) != "hello" {
			t.Fatalf("read 1: %q %v", p, err)
		}
		if m2, err = resp.WriteMessage(m2[:0], nil); err != nil {
			t.Fatal(err)
		}
		if p, err = ini.ReadMessage(p[:0], m2); err != nil {
			t.Fatal(err)
		}
		if err := ini.SplitInto(&iniSend, &iniRecv); err != nil {
			t.Fatal(err)
		}
		if err := resp.SplitInto(&respSend, &respRecv); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		run()
		for _, c := range []struct{ send, recv *CipherState }{{&iniSend, &respRecv}, {&respSend, &iniRecv}} {
			ct, err := c.send.EncryptWithAd(nil, nil, []byte("ping"))
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := c.recv.DecryptWithAd(nil, nil, ct); err != nil || string(pt) != "ping" {
				t.Fatalf("round %d: transport keys do not match: %q %v", i, pt, err)
			}
		}
	}
	if allocs := testing.AllocsPerRun(20, run); allocs != 4 {
		t.Errorf("in-place handshake: %v allocations, want 4 (the transport AEADs)", allocs)
	}
	if err := ini.SplitInto(&iniSend, &iniRecv); err != ErrAlreadySplit {
		t.Errorf("second SplitInto: %v", err)
	}

	// Re-initializing erases the previous handshake's state.
	if err := ini.InitInitiator(Config{Static: is}); err == nil {
		t.Fatal("initiator without the responder's key accepted")
	}
	if ini.Complete() || ini.st.ss.h != ([maxHashLen]byte{}) || ini.s != nil {
		t.Fatal("a failed InitInitiator left state behind")
	}
	// The state is inert: every call fails cleanly, none panics.
	if _, err := ini.WriteMessage(nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("WriteMessage on a failed state: %v", err)
	}
	if _, err := ini.ReadMessage(nil, m2); !errors.Is(err, ErrConfig) {
		t.Fatalf("ReadMessage on a failed state: %v", err)
	}
	if err := ini.MixHash([]byte("x")); !errors.Is(err, ErrConfig) {
		t.Fatalf("MixHash on a failed state: %v", err)
	}
	if err := ini.SplitInto(&iniSend, &iniRecv); !errors.Is(err, ErrHandshakeIncomplete) {
		t.Fatalf("SplitInto on a failed state: %v", err)
	}
	if h := ini.HandshakeHash(); h != nil || ini.ProtocolName() != "" {
		t.Fatalf("a failed state reports hash %x, protocol %q", h, ini.ProtocolName())
	}
	var zero HandshakeState
	if _, _, err := zero.Split(); !errors.Is(err, ErrHandshakeIncomplete) {
		t.Fatalf("Split on the zero state: %v", err)
	}

	// Split lends CipherStates that live in the state.
	h1, _ := NewInitiator(iniCfg)
	h2, _ := NewResponder(respCfg)
	m1, _ = h1.WriteMessage(m1[:0], nil)
	h2.ReadMessage(nil, m1)
	m2, _ = h2.WriteMessage(m2[:0], nil)
	if _, err := h1.ReadMessage(nil, m2); err != nil {
		t.Fatal(err)
	}
	send, _, err := h1.Split()
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.InitInitiator(iniCfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("re-initializing after Split: %v, want ErrConfig", err)
	}
	if !send.HasKey() {
		t.Fatal("the refused re-initialization erased the lent keys")
	}
}

// TestKeyPairFrom: KeyPairFrom gives the key pair NewKeyPair gives, and
// refuses a wrong length with an invalid result.
func TestKeyPairFrom(t *testing.T) {
	kp := mustGenerate(t)
	v, err := KeyPairFrom(kp.PrivateKey())
	if err != nil || v != *kp || !v.valid() {
		t.Fatalf("KeyPairFrom: %v, equal %v", err, v == *kp)
	}
	if v, err := KeyPairFrom(make([]byte, 31)); !errors.Is(err, ErrConfig) || v.valid() {
		t.Fatalf("KeyPairFrom(31 bytes): %v, valid %v", err, v.valid())
	}
	if _, err := NewInitiator(Config{Static: &KeyPair{}, RemoteStatic: kp.PublicKey()}); !errors.Is(err, ErrConfig) {
		t.Fatalf("zero KeyPair as static key: %v", err)
	}
}

// TestErase: Erase on a handshake dropped half-way (a responder that read
// message 1 and generates its next ephemeral key on a helper) waits for the
// helper, erases the keys and leaves a state that refuses every call until
// it is initialized again, after which it runs a new handshake.
func TestErase(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	is, rs := mustGenerate(t), mustGenerate(t)
	iniCfg := Config{Static: is, RemoteStatic: rs.PublicKey()}
	ini, err := NewInitiator(iniCfg)
	if err != nil {
		t.Fatal(err)
	}
	m1, err := ini.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var resp HandshakeState
	if err := resp.InitResponder(Config{Static: rs}); err != nil {
		t.Fatal(err)
	}
	if _, err := resp.ReadMessage(nil, m1); err != nil {
		t.Fatal(err)
	}
	if resp.ahead.t == nil {
		t.Fatal("the responder generates no ephemeral key ahead with GOMAXPROCS 2")
	}
	resp.Erase()
	if resp.ahead.t != nil || resp.pend != nil || resp.st.ss.ck != ([maxHashLen]byte{}) || resp.st.ss.cs.HasKey() {
		t.Fatal("Erase left helper work or keys behind")
	}
	if _, err := resp.WriteMessage(nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("WriteMessage after Erase: %v", err)
	}
	if err := resp.InitResponder(Config{Static: rs}); err != nil {
		t.Fatal(err)
	}
	if _, err := resp.ReadMessage(nil, m1); err != nil {
		t.Fatalf("a re-initialized state refuses a genuine message: %v", err)
	}
}
