package noise

import "sync"

// The static-static DH of IK ("ss", DH(s, rs)) depends only on the two
// static keys, so it is the same in every handshake between the same two
// peers. Like WireGuard, which precomputes it per peer, Haven computes it
// once and keeps it: a reconnecting client and the server it reaches each
// save one X25519 scalar multiplication (of five) per handshake.
//
// The cache holds shared secrets that the process can derive anyway from
// the static private keys it holds; it never holds a private key. It is
// bounded (ssCacheMax entries); when full, an arbitrary entry goes.

// ssCacheMax bounds the cached static-static results (about 100 bytes each).
const ssCacheMax = 4096

type ssKey [2 * DHLen]byte // local static public ‖ remote static public

// ssCache is process-wide. mu guards m: handshakes run on many goroutines.
var ssCache struct {
	mu sync.Mutex
	m  map[ssKey][DHLen]byte
}

// ssKey returns the cache key of this handshake's static-static DH.
func (hs *HandshakeState) ssKey() ssKey {
	var k ssKey
	copy(k[:DHLen], hs.s.pub[:])
	copy(k[DHLen:], hs.st.rs[:])
	return k
}

// ssLookup returns the cached DH for k.
func ssLookup(k ssKey) ([DHLen]byte, bool) {
	ssCache.mu.Lock()
	v, ok := ssCache.m[k]
	ssCache.mu.Unlock()
	return v, ok
}

// ssStore caches v, the DH for k, evicting an arbitrary entry when full.
func ssStore(k ssKey, v *[DHLen]byte) {
	ssCache.mu.Lock()
	if ssCache.m == nil {
		ssCache.m = make(map[ssKey][DHLen]byte, 64)
	}
	if _, ok := ssCache.m[k]; !ok && len(ssCache.m) >= ssCacheMax {
		for old := range ssCache.m {
			delete(ssCache.m, old)
			break
		}
	}
	ssCache.m[k] = *v
	ssCache.mu.Unlock()
}

// mixStaticDH is mixDH(hs.s, rs) through the cache, taking the result of
// a helper that computed it (async.go) if there is one. The result is
// mixed from hs.dhOut: the hash takes its input through an interface, so
// a local array would be moved to the heap.
func (hs *HandshakeState) mixStaticDH() error {
	if !hs.s.valid() || !hs.st.haveRS {
		return hs.mixDH(hs.s, nil) // reports the missing key
	}
	k := hs.ssKey()
	out := &hs.dhOut
	defer clear(out[:])
	if hs.pend != nil && hs.pendTok == tokSS {
		t := hs.join()
		*out = t.out
		err := t.err
		release(t)
		if err != nil {
			return err // low-order: never cached
		}
		ssStore(k, out)
	} else if v, ok := ssLookup(k); ok {
		*out = v
		clear(v[:])
	} else {
		if err := dh(out, hs.s, &hs.st.rs); err != nil {
			return err // low-order: never cached
		}
		ssStore(k, out)
	}
	return hs.st.ss.MixKey(out[:])
}
