package noise

import (
	"bytes"
	"testing"
)

// TestStaticDHCache: the cached static-static DH mixes exactly what the
// direct computation mixes, on a miss and on a hit, and the cache stays
// within its bound.
func TestStaticDHCache(t *testing.T) {
	s, _ := GenerateKeyPair()
	r, _ := GenerateKeyPair()
	fresh := func() *HandshakeState {
		hs, err := NewInitiator(Config{Static: s, RemoteStatic: r.PublicKey()})
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	direct, miss, hit := fresh(), fresh(), fresh()
	if err := direct.mixDH(direct.s, &direct.st.rs); err != nil {
		t.Fatal(err)
	}
	if err := miss.mixStaticDH(); err != nil {
		t.Fatal(err)
	}
	if err := hit.mixStaticDH(); err != nil {
		t.Fatal(err)
	}
	for name, hs := range map[string]*HandshakeState{"miss": miss, "hit": hit} {
		if !bytes.Equal(hs.st.ss.ck[:], direct.st.ss.ck[:]) {
			t.Fatalf("%s: chaining key differs from the direct DH", name)
		}
	}
	for i := 0; i < ssCacheMax+10; i++ {
		k, _ := GenerateKeyPair()
		hs, _ := NewInitiator(Config{Static: s, RemoteStatic: k.PublicKey()})
		if err := hs.mixStaticDH(); err != nil {
			t.Fatal(err)
		}
	}
	ssCache.mu.Lock()
	n := len(ssCache.m)
	ssCache.mu.Unlock()
	if n > ssCacheMax {
		t.Fatalf("%d cached entries, bound %d", n, ssCacheMax)
	}
}
