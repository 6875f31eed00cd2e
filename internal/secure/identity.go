package secure

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havenproto/haven/internal/noise"
	"github.com/havenproto/haven/wire"
	"golang.org/x/crypto/blake2s"
)

// Labels of the keys derived from a receiver's static public key
// (docs/PROTOCOL.md §7.4).
const (
	labelMAC1   = "haven/1 mac1"
	labelCookie = "haven/1 cookie"
)

// Identity is a static X25519 key pair together with what other peers
// derive from its public key: the authentication tag of its peer ids, and
// the mac1 and cookie keys that protect handshake packets addressed to it.
// It is safe for concurrent use and may be shared by any number of
// Initiators and Responders, which only read it (SharedIdentity shares
// one per key within a process).
type Identity struct {
	static    noise.KeyPair
	pub       wire.PublicKey
	tags      [wire.NumSuites]wire.AuthTag // the peer-id tag under each suite
	mac1Key   [blake2s.Size]byte
	cookieKey [blake2s.Size]byte

	// mac1 checks the mac1 of packets addressed to this identity; its hash
	// state is made by the first check. A check that finds it in use (a
	// concurrent one) takes a *keyedMAC from mac1Pool, making one if the
	// pool is empty: the pool has no New function, since a closure over the
	// Identity would be an allocation of its own.
	mac1Mu   sync.Mutex
	mac1     keyedMAC
	mac1Pool sync.Pool

	// lastStamp is the newest initiation timestamp this identity has sent,
	// in nanoseconds since 1970, so that timestamps strictly increase even
	// when two initiations are built at the same clock reading.
	lastStamp atomic.Int64
}

// NewIdentity builds the identity of a private key. The all-zero key is
// refused. It allocates only the Identity: the key pair is held by value.
func NewIdentity(priv wire.PrivateKey) (*Identity, error) {
	if priv.IsZero() {
		return nil, fmt.Errorf("%w: zero private key", ErrConfig)
	}
	id := new(Identity)
	var err error
	if id.static, err = noise.KeyPairFrom(priv[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	id.pub = id.static.PublicKey()
	for s := range id.tags {
		id.tags[s] = wire.Suite(s).AuthTag(id.pub)
	}
	id.mac1Key = deriveKey(labelMAC1, id.pub)
	id.cookieKey = deriveKey(labelCookie, id.pub)
	return id, nil
}

// verifyMAC1 reports, in constant time, whether mac is the mac1 of the
// packet bytes covered (header, with the length field taken as zero, and
// the body up to mac1) for a packet addressed to this identity. Safe for
// concurrent use.
func (id *Identity) verifyMAC1(covered, mac []byte) bool {
	if id.mac1Mu.TryLock() {
		if id.mac1.h == nil {
			id.mac1.init(id.mac1Key[:])
		}
		ok := id.mac1.verifyPacket(covered, mac)
		id.mac1Mu.Unlock()
		return ok
	}
	m, _ := id.mac1Pool.Get().(*keyedMAC)
	if m == nil {
		m = new(keyedMAC)
		m.init(id.mac1Key[:])
	}
	ok := m.verifyPacket(covered, mac)
	id.mac1Pool.Put(m)
	return ok
}

// PublicKey returns the identity's static public key.
func (id *Identity) PublicKey() wire.PublicKey { return id.pub }

// AuthTag returns the authentication tag of the identity's peer ids under
// the first suite (wire.SuiteChaChaPoly).
func (id *Identity) AuthTag() wire.AuthTag { return id.tags[wire.SuiteChaChaPoly] }

// AuthTagFor returns the authentication tag of the identity's peer ids
// under suite s, which must be valid.
func (id *Identity) AuthTagFor(s wire.Suite) wire.AuthTag { return id.tags[s] }

// noiseSuites maps each wire suite to the Noise suite that implements it:
// the construction's cipher with X25519 and BLAKE2s (PROTOCOL.md §2.1).
var noiseSuites = func() (out [wire.NumSuites]*noise.Suite) {
	out[wire.SuiteChaChaPoly] = noise.DefaultSuite
	s, err := noise.LookupSuite("AESGCM", "BLAKE2s")
	if err != nil {
		panic("secure: " + err.Error())
	}
	out[wire.SuiteAESGCM] = s
	return out
}()

// timestamp returns the initiation timestamp for now: now in nanoseconds
// since 1970, or one nanosecond after the previous timestamp if now is not
// later.
func (id *Identity) timestamp(now time.Time) wire.Timestamp {
	n := max(now.UnixNano(), 0)
	for {
		last := id.lastStamp.Load()
		v := max(n, last+1)
		if id.lastStamp.CompareAndSwap(last, v) {
			return wire.Timestamp{Seconds: uint64(v / 1e9), Nanos: uint32(v % 1e9)}
		}
	}
}

// deriveKey returns BLAKE2s-256(label || pub).
func deriveKey(label string, pub wire.PublicKey) [blake2s.Size]byte {
	var buf [len(labelCookie) + wire.KeyLen]byte
	n := copy(buf[:], label)
	n += copy(buf[n:], pub[:])
	return blake2s.Sum256(buf[:n])
}

// keyedMAC computes BLAKE2s-128 under one fixed key and can be reused. It
// must live inside a heap object (its sum and header buffers are handed to
// the hash through an interface) and is not safe for concurrent use.
type keyedMAC struct {
	h   hash.Hash
	sum [blake2s.Size]byte
	hdr [wire.HeaderLen]byte // cryptoHeader scratch
}

func (m *keyedMAC) init(key []byte) {
	h, err := blake2s.New128(key)
	if err != nil {
		// New128 fails only for keys longer than 32 bytes or empty.
		panic("secure: blake2s.New128: " + err.Error())
	}
	m.h = h
}

// compute writes BLAKE2s-128(key, data) to out.
func (m *keyedMAC) compute(out *[wire.MACLen]byte, data []byte) {
	m.h.Reset()
	m.h.Write(data)
	copy(out[:], m.h.Sum(m.sum[:0]))
}

// computePacket writes the MAC of a handshake packet to out (mac1 or mac2,
// PROTOCOL.md §7.4): BLAKE2s-128(key, covered) where covered is the packet
// up to the MAC, starting with its 40-byte header, and the header's length
// field is taken as zero.
func (m *keyedMAC) computePacket(out *[wire.MACLen]byte, covered []byte) {
	m.h.Reset()
	m.h.Write(cryptoHeader(&m.hdr, covered))
	m.h.Write(covered[wire.HeaderLen:])
	copy(out[:], m.h.Sum(m.sum[:0]))
}

// verifyPacket reports, in constant time, whether mac is the computePacket
// MAC of covered.
func (m *keyedMAC) verifyPacket(covered, mac []byte) bool {
	var want [wire.MACLen]byte
	m.computePacket(&want, covered)
	return subtle.ConstantTimeCompare(want[:], mac) == 1
}

// oneMAC computes the computePacket MAC of covered under a key used once
// (a cookie, or the mac1 key of a peer), with a fresh hash state in m, a
// heap scratch keyedMAC owned by the caller.
func oneMAC(out *[wire.MACLen]byte, key, covered []byte, m *keyedMAC) {
	m.init(key)
	m.computePacket(out, covered)
	m.h = nil
}

// isZero16 reports, in constant time, whether b is all zero.
func isZero16(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}

// randReader returns r, or crypto/rand.Reader for nil.
func randReader(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// drawEphemeral draws an ephemeral private key from r into seed and
// reports true, or reports false when r is crypto/rand's reader: the Noise
// core then draws the ephemeral key from crypto/rand itself, which is the
// same source and saves the copy. With a key drawn here, the handshake
// code passes the key pair (noise.KeyPairFrom(seed)) as Config.Ephemeral,
// so every initiation and response still gets a new ephemeral key, taken
// from the injected random source. seed is a heap buffer: r is an
// interface, so a buffer on the stack would be moved to the heap anyway.
func drawEphemeral(r io.Reader, seed *[noise.DHLen]byte) (bool, error) {
	if r == rand.Reader {
		return false, nil
	}
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return false, ErrRandom
	}
	return true, nil
}
