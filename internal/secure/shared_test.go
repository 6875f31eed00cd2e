package secure

import (
	"runtime"
	"testing"

	"github.com/havenproto/haven/wire"
)

// TestSharedIdentity: one Identity per key while it is held, another for
// another key, and the entry gone once nothing holds the Identity.
func TestSharedIdentity(t *testing.T) {
	k1, err := wire.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := wire.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	before := sharedLen()
	a, err := SharedIdentity(k1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SharedIdentity(k1)
	c, _ := SharedIdentity(k2)
	if a != b {
		t.Fatal("two Identities for one key")
	}
	if a == c || a.PublicKey() == c.PublicKey() {
		t.Fatal("two keys share an Identity")
	}
	if fresh, _ := NewIdentity(k1); fresh.PublicKey() != a.PublicKey() {
		t.Fatal("the shared Identity's public key differs from NewIdentity's")
	}
	if _, err := SharedIdentity(wire.PrivateKey{}); err == nil {
		t.Fatal("the zero key was accepted")
	}
	if n := sharedLen(); n != before+2 {
		t.Fatalf("%d entries, want %d", n, before+2)
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(c)
	a, b, c = nil, nil, nil
	// The cleanups run on their own goroutine after a collection: bounded
	// rounds of collections and yields, no clock.
	for i := 0; i < 1000 && sharedLen() > before; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if n := sharedLen(); n != before {
		t.Fatalf("%d entries left after the Identities were dropped, want %d", n, before)
	}
}
