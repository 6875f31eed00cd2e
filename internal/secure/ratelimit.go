package secure

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"

	"golang.org/x/crypto/blake2s"
)

// rateTable is a fixed-size table of token buckets, one per source IP
// address (ports are ignored: one host is one source). A keyed hash picks a
// slot, so an attacker cannot aim at a victim's slot. A slot belongs to the
// address that last claimed it; a new address takes over a slot only when
// the slot's bucket is full again (its owner has been quiet), and otherwise
// shares the owner's bucket, so a collision can only make a source need a
// cookie sooner, never later. The table never grows. It is guarded by the
// Responder's mutex.
//
// Tokens are counted in nanoseconds of refill time (the WireGuard
// approach): one initiation costs 1e9/rate, and a bucket holds at most
// burst initiations' worth.
type rateTable struct {
	key     [16]byte
	mask    uint64
	cost    int64 // refill time of one token, ns
	full    int64 // bucket capacity, ns
	base    time.Time
	started bool
	slots   []rateSlot
	buf     [16 + 16]byte // scratch: key || address
}

type rateSlot struct {
	addr   [16]byte
	used   bool
	tokens int64 // ns of credit at last
	last   int64 // ns since base
}

func newRateTable(size, rate, burst int, key [16]byte) *rateTable {
	n := 1 << bits.Len(uint(max(size, 1)-1)) // round up to a power of two
	cost := int64(time.Second) / int64(rate)
	return &rateTable{
		key:   key,
		mask:  uint64(n - 1),
		cost:  cost,
		full:  cost * int64(burst),
		slots: make([]rateSlot, n),
	}
}

// allow takes one token from addr's bucket and reports whether there was
// one.
func (t *rateTable) allow(addr netip.Addr, now time.Time) bool {
	if !t.started {
		t.base, t.started = now, true
	}
	at := int64(now.Sub(t.base))
	a := addr.Unmap().As16()
	copy(t.buf[:16], t.key[:])
	copy(t.buf[16:], a[:])
	sum := blake2s.Sum256(t.buf[:])
	s := &t.slots[binary.LittleEndian.Uint64(sum[:8])&t.mask]

	credit := func() int64 { return min(t.full, s.tokens+max(at-s.last, 0)) }
	if !s.used || (s.addr != a && credit() >= t.full) {
		*s = rateSlot{addr: a, used: true, tokens: t.full, last: at}
	}
	s.tokens = credit()
	s.last = max(s.last, at)
	if s.tokens < t.cost {
		return false
	}
	s.tokens -= t.cost
	return true
}
