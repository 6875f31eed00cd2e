package noise

import "testing"

// TestTransportAllocs: sealing and opening a transport message on Haven's
// suite allocates nothing once the caller's buffers exist.
func TestTransportAllocs(t *testing.T) {
	is, rs := mustGenerate(t), mustGenerate(t)
	send, _, _, recv := handshakePair(t, Config{Static: is, RemoteStatic: rs.PublicKey()}, Config{Static: rs})
	if send.cf != cipherChaChaPoly {
		t.Fatal("default suite is not ChaChaPoly")
	}
	payload := make([]byte, 1400)
	ad := make([]byte, 16)
	ct := make([]byte, 0, 1400+TagLen)
	pt := make([]byte, 0, 1400)
	var err error
	allocs := testing.AllocsPerRun(1000, func() {
		n := send.Nonce()
		ct, err = send.EncryptWithAd(ct[:0], ad, payload)
		if err != nil {
			t.Fatal(err)
		}
		pt, err = recv.DecryptAt(pt[:0], n, ad, ct)
		if err != nil {
			t.Fatal(err)
		}
		// and the sequential path, re-sealing in place
		ct, err = send.EncryptWithAd(ct[:0], ad, ct[:len(payload)])
		if err != nil {
			t.Fatal(err)
		}
		recv.SetNonce(n + 1)
		if _, err = recv.DecryptWithAd(ct[:0], ad, ct); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("transport encrypt+decrypt: %v allocations per run, want 0", allocs)
	}
}

func TestReplayAllocs(t *testing.T) {
	var w ReplayWindow
	var n uint64
	allocs := testing.AllocsPerRun(1000, func() {
		if w.Check(n) {
			w.Accept(n)
		}
		w.Check(n)
		w.Accept(n + 20000)
		n += 3
	})
	if allocs != 0 {
		t.Fatalf("ReplayWindow Check/Accept: %v allocations per run, want 0", allocs)
	}
}
