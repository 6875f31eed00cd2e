package noise

import (
	"runtime"
	"testing"
)

// maxHandshakeAllocs pins the allocations of one complete IK handshake,
// both sides (two constructors, two messages written and read, two
// Splits), with a cached static-static DH. They are the objects of
// crypto/ecdh (3 key objects per generated ephemeral key, 2 per received
// public key, 1 per DH output), the AEAD objects (three handshake keys
// per side, made on first use, and the four transport keys), the two
// HandshakeStates with their hash states, and the four transport
// CipherStates. Overlapping work on helper goroutines (async.go) adds
// none: its tasks are pooled.
const maxHandshakeAllocs = 40

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
