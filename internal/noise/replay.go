package noise

import "math"

// Replay window geometry (RFC 6479 §2): a ring of replayBlocks 64-bit
// words. The word holding the newest counter is always partly "ahead" of
// it, so one word is slack and the window proper is the rest.
const (
	replayBlockBits = 64
	replayBlocks    = 128 // 8192 bits; a power of two, so indexing is a mask
	replayBlockMask = replayBlocks - 1

	// ReplayWindowSize is how many of the most recent counters the window
	// remembers: with newest counter N, counters N-8127 .. N are judged
	// individually, and anything older is refused as a possible replay.
	ReplayWindowSize = (replayBlocks - 1) * replayBlockBits // 8128

	// DefaultRejectAfter is the default ReplayWindow.RejectAfter: counters
	// at or above 2^64 - 2^13 - 1 are refused, leaving a margin below the
	// reserved nonce 2^64-1 (the WireGuard REJECT_AFTER_MESSAGES value).
	DefaultRejectAfter uint64 = math.MaxUint64 - (1 << 13)
)

// ReplayWindow rejects duplicated and very old transport counters on a
// network that may reorder and duplicate packets (Noise spec rev 34 §11.4
// leaves this to the application; this is the RFC 6479 bitmap).
//
// The check is split in two so that an attacker cannot move the window
// with forged packets: Check before decrypting, then Accept only after
// the AEAD tag has verified:
//
//	if !w.Check(n) { drop }
//	pt, err := recv.DecryptAt(buf[:0], n, ad, ct)
//	if err != nil { drop }
//	if !w.Accept(n) { drop } // a duplicate raced us
//
// The zero value is an empty window with the default limit. It holds no
// bitmap while the counters it has accepted are one unbroken run, first ..
// last, which is what a lossless, in-order path delivers: the run is two
// numbers. The first counter that breaks the run (a gap, a reordering, a
// counter below the run) makes the window allocate its 1 KiB bitmap and
// record the run in it; from then on, and for key sets held in reserve
// that never get a packet, Check and Accept never allocate. A
// ReplayWindow is not safe for concurrent use.
type ReplayWindow struct {
	// RejectAfter: counters >= RejectAfter are always refused. Zero means
	// DefaultRejectAfter. Tests shorten it; Haven re-keys long before.
	RejectAfter uint64

	last uint64 // highest counter accepted (0 while none)
	// Without a bitmap: whether a counter was accepted, and the lowest one;
	// the accepted counters are exactly first .. last.
	started bool
	first   uint64
	bitmap  *[replayBlocks]uint64 // nil while the accepted counters are a run
}

func (w *ReplayWindow) limit() uint64 {
	if w.RejectAfter == 0 {
		return DefaultRejectAfter
	}
	return w.RejectAfter
}

// Check reports whether counter n could be fresh: below the limit, not
// older than the window, and not yet accepted. It changes nothing.
func (w *ReplayWindow) Check(n uint64) bool {
	if n >= w.limit() {
		return false
	}
	if n > w.last {
		return true
	}
	if w.last-n >= ReplayWindowSize {
		return false
	}
	if w.bitmap == nil {
		return !w.started || n < w.first
	}
	return w.bitmap[(n/replayBlockBits)&replayBlockMask]&(1<<(n%replayBlockBits)) == 0
}

// Accept marks counter n as received, sliding the window forward if n is
// the newest so far. It returns false, changing nothing, if n is refused
// by Check: a replay, too old, or at or over the limit. Call it only for
// a message whose authentication tag has verified.
func (w *ReplayWindow) Accept(n uint64) bool {
	if n >= w.limit() {
		return false
	}
	if w.bitmap == nil {
		switch {
		case !w.started:
			w.started, w.first, w.last = true, n, n
			return true
		case n == w.last+1: // in order (n < limit, so last+1 does not wrap)
			w.last = n
			return true
		case n >= w.first && n <= w.last:
			return false // a replay
		case n < w.last && w.last-n >= ReplayWindowSize:
			return false // too old
		}
		w.spill()
	}
	if n > w.last {
		// Clear the words between the old newest word and n's word; they
		// now stand for counters never seen. A jump of a full ring or more
		// clears everything.
		cur, next := w.last/replayBlockBits, n/replayBlockBits
		diff := next - cur
		if diff > replayBlocks {
			diff = replayBlocks
		}
		for i := uint64(1); i <= diff; i++ {
			w.bitmap[(cur+i)&replayBlockMask] = 0
		}
		w.last = n
	} else if w.last-n >= ReplayWindowSize {
		return false
	}
	word := &w.bitmap[(n/replayBlockBits)&replayBlockMask]
	bit := uint64(1) << (n % replayBlockBits)
	if *word&bit != 0 {
		return false
	}
	*word |= bit
	return true
}

// spill moves the run first .. last into a new bitmap: the part of it
// inside the window, a word at a time.
func (w *ReplayWindow) spill() {
	w.bitmap = new([replayBlocks]uint64)
	c := w.first
	if w.last-c >= ReplayWindowSize {
		c = w.last - (ReplayWindowSize - 1)
	}
	for {
		off := c % replayBlockBits
		k := min(replayBlockBits-off, w.last-c+1) // bits to set in c's word, 1..64
		w.bitmap[(c/replayBlockBits)&replayBlockMask] |= (^uint64(0) >> (replayBlockBits - k)) << off
		if w.last-c < k { // c+k-1 == last: done (and c+k could wrap)
			return
		}
		c += k
	}
}

// Reset empties the window (for a new key), keeping RejectAfter and the
// bitmap's memory if it has one.
func (w *ReplayWindow) Reset() {
	w.last, w.first, w.started = 0, 0, false
	if w.bitmap != nil {
		clear(w.bitmap[:])
	}
}
