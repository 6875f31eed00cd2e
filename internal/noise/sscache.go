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

// mixStaticDH is mixDH(hs.s, rs) through the cache.
func (hs *HandshakeState) mixStaticDH() error {
	if !hs.s.valid() || hs.st.rsKey == nil {
		return hs.mixDH(hs.s, hs.st.rsKey) // reports the missing key
	}
	var k ssKey
	copy(k[:DHLen], hs.s.pub[:])
	copy(k[DHLen:], hs.st.rs[:])
	ssCache.mu.Lock()
	v, ok := ssCache.m[k]
	ssCache.mu.Unlock()
	if !ok {
		if err := dh(&v, hs.s, hs.st.rsKey); err != nil {
			return err // low-order: never cached
		}
		ssCache.mu.Lock()
		if ssCache.m == nil {
			ssCache.m = make(map[ssKey][DHLen]byte)
		}
		if len(ssCache.m) >= ssCacheMax {
			for old := range ssCache.m {
				delete(ssCache.m, old)
				break
			}
		}
		ssCache.m[k] = v
		ssCache.mu.Unlock()
	}
	err := hs.st.ss.MixKey(v[:])
	clear(v[:])
	return err
}
