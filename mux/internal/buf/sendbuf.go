package buf

import "math"

// SendBuffer is the sending side of one reliable stream channel: the bytes
// the application wrote that the peer has not acknowledged yet, and what to
// send next. It owns a byte ring of at most capacity bytes; Write accepts
// data only while written-but-unacknowledged bytes fit, so the capacity is
// also the most this stream can have in flight.
//
// # Sending: the append idiom
//
// The engine copies stream bytes straight into the packet it is building.
// It reserves room for the 8-byte STREAM message header, appends the body
// with [SendBuffer.AppendLost] (retransmissions first) or
// [SendBuffer.AppendNew], then fills in the header from the returned
// offset, length and FIN:
//
//	hdr := len(pkt)
//	pkt = pkt[:hdr+8]
//	pkt, off, n, fin := sb.AppendNew(pkt, room, peerLimit)
//	if n == 0 && !fin { pkt = pkt[:hdr] } // nothing to send
//	// write the header at pkt[hdr:]: offset low 32 bits, length n, FIN
//
// The body is appended with append, so it allocates only if dst lacks
// capacity for max more bytes; pass a packet buffer with room. Nothing
// returned aliases the ring.
//
// The engine records (offset, n, fin) of every STREAM message it sends
// and later reports each one exactly as sent to [SendBuffer.Ack] or
// [SendBuffer.MarkLost].
//
// # Memory
//
// The ring is allocated on the first Write, doubling from 4 KiB up to the
// capacity, and dropped when everything including FIN is acknowledged, on
// Reset and on Release. The buffer owns the ring's array until then; a
// small one (up to 64 KiB) goes back to a process-wide pool, cleared, for
// the next stream (ring.go). The interval sets are allocated on the first
// loss or out-of-order acknowledgement.
type SendBuffer struct {
	ring     ring
	capacity int

	acked   uint64 // contiguous acknowledged prefix: bytes below are freed
	sent    uint64 // next new offset; bytes below have been sent at least once
	written uint64 // end of the written data

	finWritten bool // Close was called: the final size is written
	finSent    bool
	finAcked   bool
	finLost    bool // FIN must be sent again
	dead       bool // Reset or Release: everything discarded
	wasReset   bool
	reserved   int // bytes of the open reservation (Reserve), 0 when none

	lost  RangeSet // sent, unacknowledged ranges to retransmit, within [acked, sent)
	ackRs RangeSet // acknowledged ranges above acked
}

// NewSendBuffer returns an empty send buffer holding at most capacity
// bytes (clamped to [1, MaxSendCapacity]) and tracking at most maxRanges
// lost and acknowledged intervals each (DefaultMaxRanges if ≤ 0). When
// the acknowledged intervals overflow, the bytes of an acknowledgement
// that cannot be recorded are retransmitted instead, and lost intervals
// merge with a neighbour (retransmitting some bytes the peer may already
// have); neither loses data.
func NewSendBuffer(capacity, maxRanges int) *SendBuffer {
	b := new(SendBuffer)
	b.Init(capacity, maxRanges)
	return b
}

// Init makes b an empty send buffer in place, as NewSendBuffer does, for a
// buffer kept inside its owner's struct. b must not hold a ring (it is
// new, or Released), and must not be copied once written to: its ring's
// array goes back to a shared pool when released.
func (b *SendBuffer) Init(capacity, maxRanges int) {
	if maxRanges <= 0 {
		maxRanges = DefaultMaxRanges
	}
	*b = SendBuffer{capacity: min(max(capacity, 1), MaxSendCapacity)}
	b.lost.initLazy(maxRanges)
	b.ackRs.initLazy(maxRanges)
}

// Capacity returns the most bytes the buffer holds.
func (b *SendBuffer) Capacity() int { return b.capacity }

// Buffered returns the bytes written but not yet acknowledged (as a
// contiguous prefix); 0 after Reset or Release.
func (b *SendBuffer) Buffered() int {
	if b.dead {
		return 0
	}
	return int(b.written - b.acked)
}

// Free returns how many bytes Write would accept now.
func (b *SendBuffer) Free() int {
	if b.dead || b.finWritten {
		return 0
	}
	return b.capacity - int(b.written-b.acked)
}

// Unsent returns the bytes written but never sent.
func (b *SendBuffer) Unsent() int {
	if b.dead {
		return 0
	}
	return int(b.written - b.sent)
}

// UnsentRoom returns how many more bytes may be written while no more
// than limit stay unsent, with hysteresis: none once more than half of
// limit is unsent, so that a writer held back by limit resumes for half
// of it at a time, not for each packet sent. A limit of 0 or less means
// none. It does not look at the free space (Free).
func (b *SendBuffer) UnsentRoom(limit int) int {
	if limit <= 0 {
		return math.MaxInt
	}
	u := b.Unsent()
	if u > limit/2 {
		return 0
	}
	return limit - u
}

// Write copies as much of p as fits and returns how many bytes it took: 0
// when the buffer is full, after Close, after Reset and after Release.
// The caller keeps ownership of p.
func (b *SendBuffer) Write(p []byte) int {
	if b.reserved > 0 {
		return 0 // the reserved bytes come next (Reserve)
	}
	n := min(len(p), b.Free())
	if uint64(n) > math.MaxUint64-b.written {
		n = int(math.MaxUint64 - b.written)
	}
	if n <= 0 {
		return 0
	}
	b.ring.grow(int(b.written-b.acked)+n, b.capacity, b.acked, b.written)
	b.ring.put(b.written, p[:n])
	b.written += uint64(n)
	return n
}

// Reserve opens a reservation of up to want bytes of the ring's free space,
// the bytes that come next in the stream, and returns them as one slice
// (shorter than want where the ring wraps, or where less is free; empty
// when nothing is free or after Close, Reset or Release). The caller fills
// a prefix of it, without the owner's lock, and then calls Commit with
// its length: so a reader's data (io.ReaderFrom) goes straight into the
// ring, with no buffer in between.
//
// Until Commit the slice belongs to the caller: the buffer never touches
// those bytes, Write takes nothing, and an array the buffer lets go of
// meanwhile (after Reset or Release, or once a FIN written by Close is
// acknowledged) goes to the garbage collector instead of a pool. Only one
// reservation is open at a time: a second Reserve before Commit returns
// nothing.
func (b *SendBuffer) Reserve(want int) []byte {
	if b.reserved > 0 {
		return nil
	}
	n := min(want, b.Free())
	if n > 0 && uint64(n) > math.MaxUint64-b.written {
		n = int(math.MaxUint64 - b.written)
	}
	if n <= 0 {
		return nil
	}
	b.ring.grow(int(b.written-b.acked)+n, b.capacity, b.acked, b.written)
	i := b.ring.pos(b.written)
	n = min(n, len(b.ring.b)-i)
	b.reserved = n
	return b.ring.b[i : i+n : i+n]
}

// Commit closes the reservation: the first n bytes of the reserved slice
// become stream data (n is clamped to the reservation), and it returns
// how many did. It returns 0, and the bytes are dropped, when Close, Reset
// or Release came between Reserve and Commit. Commit without an open
// reservation returns 0.
func (b *SendBuffer) Commit(n int) int {
	if b.reserved == 0 {
		return 0
	}
	n = min(max(n, 0), b.reserved)
	b.reserved = 0
	if b.dead || b.finWritten || b.ring.b == nil {
		return 0
	}
	b.written += uint64(n)
	return n
}

// Close marks the end of the stream after everything written so far: the
// final size is fixed and FIN goes out with (or after) the last byte.
// Later Writes take nothing. Closing twice is harmless.
func (b *SendBuffer) Close() {
	if !b.dead {
		b.finWritten = true
	}
}

// FinalSize returns the stream's final size once it is known: the bytes
// written when Close was called, or SentMax at Reset.
func (b *SendBuffer) FinalSize() (size uint64, ok bool) {
	switch {
	case b.wasReset:
		return b.sent, true
	case b.finWritten:
		return b.written, true
	}
	return 0, false
}

// SentMax returns the highest offset ever sent (exclusive): what counts
// against the peer's channel and session limits.
func (b *SendBuffer) SentMax() uint64 { return b.sent }

// GrowRanges raises the most acknowledged and lost intervals the buffer
// tracks to maxRanges (never lowers them); see [RecvBuffer.GrowRanges].
func (b *SendBuffer) GrowRanges(maxRanges int) {
	b.lost.Grow(maxRanges)
	b.ackRs.Grow(maxRanges)
}

// MaxRanges returns the most acknowledged intervals the buffer tracks.
func (b *SendBuffer) MaxRanges() int { return b.ackRs.MaxRanges() }

// Acked returns the end of the contiguous acknowledged prefix.
func (b *SendBuffer) Acked() uint64 { return b.acked }

// AllAcked reports whether every byte and the FIN have been acknowledged:
// the sending side finished normally. It is false after Reset or Release.
func (b *SendBuffer) AllAcked() bool {
	return !b.dead && b.finAcked && b.acked == b.written
}

// HasLost reports whether retransmission data or a lost FIN is queued.
func (b *SendBuffer) HasLost() bool {
	if b.dead {
		return false
	}
	_, _, ok := b.nextLost()
	return ok || b.finLost
}

// Sendable reports whether AppendLost or AppendNew (under limit) would
// send something now.
func (b *SendBuffer) Sendable(limit uint64) bool {
	if b.dead {
		return false
	}
	return b.HasLost() || (b.written > b.sent && limit > b.sent) ||
		(b.finWritten && !b.finSent && b.sent == b.written)
}

// Blocked reports whether new data waits but the peer's limit stops it:
// the engine then sends BLOCKED carrying limit (§5.4).
func (b *SendBuffer) Blocked(limit uint64) bool {
	return !b.dead && b.written > b.sent && limit <= b.sent
}

// AppendNew appends up to max bytes of never-sent data to dst, never going
// beyond the stream offset limit (the peer's MAX_DATA for this channel,
// exclusive). It returns the extended dst, the offset of the first byte,
// the byte count n and whether FIN goes with them (the data ends at the
// final size). n == 0 with fin is a FIN-only message, which the limit does
// not restrict; n == 0 without fin means there is nothing to send.
// Retransmissions do not count against the limit: send them with
// AppendLost.
func (b *SendBuffer) AppendNew(dst []byte, max int, limit uint64) (out []byte, offset uint64, n int, fin bool) {
	offset = b.sent
	if b.dead {
		return dst, offset, 0, false
	}
	avail := b.written - b.sent
	if limit <= b.sent {
		avail = 0
	} else {
		avail = min(avail, limit-b.sent)
	}
	if max < 0 {
		max = 0
	}
	avail = min(avail, uint64(max))
	fin = b.finWritten && !b.finSent && b.sent+avail == b.written
	if avail > 0 {
		dst = b.ring.appendTo(dst, offset, int(avail))
		b.sent += avail
	}
	if fin {
		b.finSent = true
	}
	return dst, offset, int(avail), fin
}

// AppendLost appends up to max bytes of data queued for retransmission to
// dst, lowest offset first, skipping bytes acknowledged meanwhile, with the
// same results as AppendNew. A lost FIN goes out with the last bytes, or
// alone (n == 0, fin, offset = final size). n == 0 without fin means
// nothing is queued. The engine calls it before AppendNew, so
// retransmissions precede new data.
func (b *SendBuffer) AppendLost(dst []byte, max int) (out []byte, offset uint64, n int, fin bool) {
	if b.dead {
		return dst, b.sent, 0, false
	}
	s, e, ok := b.nextLost()
	if !ok {
		if b.finLost {
			b.finLost = false
			return dst, b.written, 0, true
		}
		return dst, b.sent, 0, false
	}
	if max < 0 {
		max = 0
	}
	c := min(e-s, uint64(max))
	if c > 0 {
		dst = b.ring.appendTo(dst, s, int(c))
		b.lost.Remove(s, s+c) // a prefix of the lowest interval: never splits
	}
	if b.finLost && s+c == b.written {
		b.finLost = false
		fin = true
	}
	return dst, s, int(c), fin
}

// nextLost returns the lowest run [s, e) of queued retransmission data that
// is not acknowledged, pruning acknowledged bytes from the front of the
// queue.
func (b *SendBuffer) nextLost() (s, e uint64, ok bool) {
	for b.lost.Len() > 0 {
		s, e = b.lost.r[0].start, b.lost.r[0].end
		s = max(s, b.acked)
		i := b.ackRs.endAbove(s)
		if i < len(b.ackRs.r) && b.ackRs.r[i].start <= s {
			s = b.ackRs.r[i].end // intervals are non-adjacent: s is now unacknowledged
			i++
		}
		if s >= e {
			b.lost.splice(0, 1, span{}, span{}, 0)
			continue
		}
		b.lost.r[0].start = s
		if i < len(b.ackRs.r) && b.ackRs.r[i].start < e {
			e = b.ackRs.r[i].start
		}
		return s, e, true
	}
	return 0, 0, false
}

// clip returns [offset, offset+n) ∩ [lo, hi).
func clip(offset uint64, n int, lo, hi uint64) (s, e uint64) {
	e = offset + uint64(n)
	if e < offset {
		e = math.MaxUint64
	}
	return max(offset, lo), min(e, hi)
}

// MarkLost queues the bytes [offset, offset+n) of a STREAM message the
// engine declared lost for retransmission, and its FIN if fin. Bytes never
// sent or already acknowledged are ignored.
func (b *SendBuffer) MarkLost(offset uint64, n int, fin bool) {
	if b.dead {
		return
	}
	if n > 0 {
		if s, e := clip(offset, n, b.acked, b.sent); s < e {
			b.lost.addCoalesce(s, e)
		}
	}
	if fin && b.finSent && !b.finAcked {
		b.finLost = true
	}
}

// Ack records that the peer acknowledged [offset, offset+n) and, if fin,
// the FIN. When the contiguous acknowledged prefix grows, the space behind
// it becomes free for Write; acknowledgements above the prefix are kept
// until the gap below them fills. Bytes never sent are ignored. When
// everything is acknowledged the ring is released.
func (b *SendBuffer) Ack(offset uint64, n int, fin bool) {
	if b.dead {
		return
	}
	if fin && b.finSent {
		b.finAcked = true
		b.finLost = false
	}
	if n > 0 {
		if s, e := clip(offset, n, b.acked, b.sent); s < e {
			switch {
			case s == b.acked:
				b.acked = e
				for b.ackRs.Len() > 0 && b.ackRs.r[0].start <= b.acked {
					b.acked = max(b.acked, b.ackRs.r[0].end)
					b.ackRs.splice(0, 1, span{}, span{}, 0)
				}
				b.lost.RemoveBelow(b.acked)
			case b.ackRs.Add(s, e):
				b.lost.removeKeep(s, e)
			default:
				// No room to remember it: send the bytes again, and
				// their next acknowledgement counts.
				b.lost.addCoalesce(s, e)
			}
		}
	}
	if b.AllAcked() {
		b.releaseRing()
	}
}

// Reset abandons the stream (RESET, §5.7): it discards all data, queued
// retransmissions and the ring, and returns the final size to put in the
// RESET message, SentMax. Later calls of every method are harmless no-ops.
func (b *SendBuffer) Reset() (finalSize uint64) {
	if !b.dead {
		b.wasReset = true
		b.discard()
	}
	size, _ := b.FinalSize()
	return size
}

// Release discards everything and drops all storage, including the
// interval sets, without the bookkeeping of Reset: for a channel that is
// being torn down. The SendBuffer must not be used afterwards except for
// harmless no-op calls.
func (b *SendBuffer) Release() {
	b.discard()
	b.lost = RangeSet{}
	b.ackRs = RangeSet{}
}

// releaseRing drops the ring: back to its pool, or, while a reservation
// is open and its holder may still write to the array, to the garbage
// collector.
func (b *SendBuffer) releaseRing() {
	if b.reserved > 0 {
		b.ring.abandon()
		return
	}
	b.ring.release()
}

func (b *SendBuffer) discard() {
	b.dead = true
	b.finLost = false
	b.releaseRing()
	b.lost.Clear()
	b.ackRs.Clear()
}
