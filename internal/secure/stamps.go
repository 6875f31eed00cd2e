package secure

import (
	"encoding/binary"
	"math/bits"
	"time"

	"github.com/havenproto/haven/wire"
	"golang.org/x/crypto/blake2s"
)

// stampWays is the associativity of the timestamp table.
const stampWays = 4

// stampTable remembers, per initiator static key, the newest initiation
// timestamp accepted (docs/PROTOCOL.md §7.2), in a fixed number of 4-way
// sets chosen by a keyed hash. See ResponderConfig.MaxPeers for what
// happens at capacity and why it stays replay-safe: each set has a floor,
// the highest (clamped) timestamp ever evicted from it, and a key without
// an entry must beat the floor. It is guarded by the Responder's mutex.
type stampTable struct {
	key       [16]byte
	mask      uint64
	tolerance time.Duration
	sets      []stampSet
	buf       [16 + wire.KeyLen]byte
}

type stampSet struct {
	floor wire.Timestamp
	ways  [stampWays]stampEntry
}

type stampEntry struct {
	peer     wire.PublicKey
	ts       wire.Timestamp // newest timestamp accepted from peer
	accepted wire.Timestamp // the responder's clock when it was accepted
	used     bool
}

func newStampTable(maxPeers int, tolerance time.Duration, key [16]byte) *stampTable {
	sets := (max(maxPeers, stampWays) + stampWays - 1) / stampWays
	n := 1 << bits.Len(uint(sets-1))
	return &stampTable{key: key, mask: uint64(n - 1), tolerance: tolerance, sets: make([]stampSet, n)}
}

// accept records ts for peer and reports true if ts is strictly newer than
// everything accepted from peer before (or, without an entry, than the
// set's floor). It changes nothing when it reports false.
func (t *stampTable) accept(peer wire.PublicKey, ts wire.Timestamp, now time.Time) bool {
	copy(t.buf[:16], t.key[:])
	copy(t.buf[16:], peer[:])
	sum := blake2s.Sum256(t.buf[:])
	set := &t.sets[binary.LittleEndian.Uint64(sum[:8])&t.mask]
	clock := timestampOf(now)

	for w := range set.ways {
		e := &set.ways[w]
		if e.used && e.peer == peer {
			if !ts.After(e.ts) {
				return false
			}
			e.ts, e.accepted = ts, clock
			return true
		}
	}
	if !ts.After(set.floor) {
		return false
	}
	victim := &set.ways[0]
	for w := range set.ways {
		e := &set.ways[w]
		if !e.used {
			victim = e
			break
		}
		if victim.used && victim.accepted.After(e.accepted) {
			victim = e
		}
	}
	if victim.used {
		// Raise the floor to the evicted timestamp, but never further than
		// tolerance past the responder's clock when it was accepted.
		limit := addTimestamp(victim.accepted, t.tolerance)
		f := victim.ts
		if f.After(limit) {
			f = limit
		}
		if f.After(set.floor) {
			set.floor = f
		}
	}
	*victim = stampEntry{peer: peer, ts: ts, accepted: clock, used: true}
	return true
}

// timestampOf converts a wall-clock time to a wire timestamp (zero before
// 1970).
func timestampOf(t time.Time) wire.Timestamp {
	n := max(t.UnixNano(), 0)
	return wire.Timestamp{Seconds: uint64(n / 1e9), Nanos: uint32(n % 1e9)}
}

// addTimestamp returns ts + d for a non-negative d.
func addTimestamp(ts wire.Timestamp, d time.Duration) wire.Timestamp {
	ns := uint64(ts.Nanos) + uint64(d%time.Second)
	return wire.Timestamp{Seconds: ts.Seconds + uint64(d/time.Second) + ns/1e9, Nanos: uint32(ns % 1e9)}
}
