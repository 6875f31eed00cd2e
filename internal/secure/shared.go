package secure

import (
	"runtime"
	"sync"
	"weak"

	"github.com/havenproto/haven/wire"
	"golang.org/x/crypto/blake2s"
)

// shared maps a digest of each private key that SharedIdentity was asked
// for to its Identity, held weakly: an entry keeps neither the Identity
// alive nor the key itself, and goes once the Identity was collected.
var shared struct {
	mu sync.Mutex // guards m
	m  map[[blake2s.Size]byte]weak.Pointer[Identity]
}

// SharedIdentity returns the Identity of priv, the same one for every call
// with the same key while any caller still holds it. A process that makes
// an endpoint per connection with one client key (a net.Dialer-style
// Dialer per dial) so derives the public key, its tags and MAC keys once:
// 15 µs of a fresh session's critical path otherwise. Sharing changes
// nothing a peer sees; the initiation timestamps of endpoints with one key
// now come from one counter, so they strictly increase across them too.
func SharedIdentity(priv wire.PrivateKey) (*Identity, error) {
	if priv.IsZero() {
		return NewIdentity(priv) // its error
	}
	d := blake2s.Sum256(priv[:])
	shared.mu.Lock()
	id := shared.m[d].Value() // nil for no entry, or a collected one
	shared.mu.Unlock()
	if id != nil {
		return id, nil
	}
	id, err := NewIdentity(priv)
	if err != nil {
		return nil, err
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if other := shared.m[d].Value(); other != nil {
		return other, nil // another caller made it meanwhile
	}
	if shared.m == nil {
		shared.m = make(map[[blake2s.Size]byte]weak.Pointer[Identity])
	}
	shared.m[d] = weak.Make(id)
	runtime.AddCleanup(id, forgetShared, d)
	return id, nil
}

// forgetShared drops digest d's entry once its Identity was collected,
// unless a newer Identity of the same key took its place.
func forgetShared(d [blake2s.Size]byte) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.m[d].Value() == nil {
		delete(shared.m, d)
	}
}

// sharedLen returns how many keys have an entry (tests).
func sharedLen() int {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return len(shared.m)
}
