package buf

import (
	"io"
	"math"
)

// RecvBuffer is the receiving side of one reliable stream channel: it
// reassembles STREAM data that arrives out of order, duplicated or
// retransmitted, enforces the channel's flow-control limit and final size,
// and hands the contiguous bytes to the reader.
//
// # Flow control
//
// The window is how far beyond the read offset the peer may send; the
// limit is the highest offset (exclusive) the peer has been allowed, the
// largest value announced so far. It starts at the initial window (the
// OPEN/ACCEPT argument or the session's initial channel window, §5.7, §7.3)
// and only rises when the engine announces a new one, obtained from
// [RecvBuffer.ShouldUpdateWindow] or [RecvBuffer.AnnounceLimit]; every
// MAX_DATA the engine sends must carry a value from one of them (or
// [RecvBuffer.Limit]). Data beyond the limit is [ErrFlowControl]. Because
// the limit never exceeds ReadOffset()+Window(), the buffered data never
// exceeds the window, which never exceeds [MaxWindow].
//
// # Ownership
//
// Insert copies data, so the packet buffer may go back to its pool as soon
// as it returns. InsertLent may instead keep a slice of the packet's
// buffer, under a reference taken from the packet's [Holder] (lent.go),
// until Read has copied the slice out, or Close or Reset drops it; it
// then releases the reference. Read copies into the caller's slice. No
// returned slice aliases the ring or a lent buffer.
//
// # Memory
//
// The ring is allocated on the first Insert, doubling from 4 KiB up to the
// window, and dropped once everything up to the final size has been read,
// on Close and on Reset. The buffer owns the ring's array until then; a
// small one (up to 64 KiB) goes back to a process-wide pool, cleared, for
// the next stream (ring.go). The interval set is allocated when data first
// arrives out of order. Lent pieces (InsertLent) take no ring: a stream
// whose data all arrives in order and in pieces of at least minLend bytes
// never allocates one.
type RecvBuffer struct {
	ring    ring
	lent    lentQueue // lent pieces: [read, lent.end) when not empty; the ring holds what follows
	window  int
	limit   uint64 // highest limit announced (exclusive)
	read    uint64 // read offset: bytes below were consumed
	contig  uint64 // end of the contiguous data received from 0; ≥ read
	highest uint64 // highest offset received (exclusive), or the final size
	final   uint64
	hasFin  bool
	closed  bool
	reset   bool
	got     RangeSet // received intervals above contig, none touching it
}

// NewRecvBuffer returns a receive buffer whose window, and initial limit,
// is window bytes (clamped to [0, MaxWindow]), tracking at most maxRanges
// received intervals beyond the contiguous prefix (DefaultMaxRanges if
// ≤ 0), so at most maxRanges gaps.
func NewRecvBuffer(window, maxRanges int) *RecvBuffer {
	b := new(RecvBuffer)
	b.Init(window, maxRanges)
	return b
}

// Init makes b an empty receive buffer in place, as NewRecvBuffer does,
// for a buffer kept inside its owner's struct. b must not hold a ring (it
// is new, or Closed), and must not be copied once data arrived: its ring's
// array goes back to a shared pool when released.
func (b *RecvBuffer) Init(window, maxRanges int) {
	if maxRanges <= 0 {
		maxRanges = DefaultMaxRanges
	}
	w := min(max(window, 0), MaxWindow)
	*b = RecvBuffer{window: w, limit: uint64(w)}
	b.got.initLazy(maxRanges)
}

// Window returns the current window.
func (b *RecvBuffer) Window() int { return b.window }

// Limit returns the flow-control limit: the highest offset, exclusive, the
// peer may send.
func (b *RecvBuffer) Limit() uint64 { return b.limit }

// ReadOffset returns how many bytes have been consumed by Read.
func (b *RecvBuffer) ReadOffset() uint64 { return b.read }

// Contiguous returns the end of the contiguous data received from offset
// 0: the expected offset for restoring a 32-bit wire offset (§5.8).
func (b *RecvBuffer) Contiguous() uint64 { return b.contig }

// Readable returns how many bytes Read can return now.
func (b *RecvBuffer) Readable() int {
	if b.closed || b.reset {
		return 0
	}
	return int(b.contig - b.read)
}

// HighestReceived returns the highest offset received, exclusive, or the
// final size once known: the channel's contribution to session-level flow
// control (§5.4).
func (b *RecvBuffer) HighestReceived() uint64 { return b.highest }

// FinalSize returns the final size once a FIN or RESET has fixed it.
func (b *RecvBuffer) FinalSize() (size uint64, ok bool) { return b.final, b.hasFin }

// Done reports whether the receiving side is finished: the final size is
// known and either every byte has been read, or the side was closed or
// reset. The engine may then forget the buffer.
func (b *RecvBuffer) Done() bool {
	return b.hasFin && (b.read == b.final || b.closed || b.reset)
}

// Insert stores the body of a STREAM message: data at the full stream
// offset, with fin if the message carries FIN. It is atomic: on error
// nothing changes.
//
//   - Bytes below the read offset are ignored. Bytes overlapping bytes
//     already received must be identical, or Insert returns
//     [ErrDataMismatch].
//   - Bytes beyond Limit() are [ErrFlowControl].
//   - A FIN fixes the final size at offset+len(data). A different final
//     size, data beyond it, or a final size below data already received is
//     [ErrFinalSize].
//   - If recording the data would need more than maxRanges intervals,
//     Insert returns [ErrTooFragmented]; the engine drops the packet
//     without acknowledging it and the sender retransmits it. Data that
//     starts at or below Contiguous() is always accepted, so the stream
//     makes progress.
//
// After Close or Reset, data is checked against the limits and the final
// size and counted in HighestReceived, then discarded. An empty message
// without FIN is ignored.
func (b *RecvBuffer) Insert(offset uint64, data []byte, fin bool) error {
	return b.InsertLent(offset, data, fin, nil)
}

// InsertLent is Insert for data that lies in a received packet's buffer
// lent by h: when the new bytes continue the readable data in order, are
// at least minLend long, and everything readable so far is lent too, the
// buffer keeps data's slice under a reference from h.Hold instead of
// copying it (lent.go). Otherwise, or when h is nil or h.Hold declines,
// it copies as Insert does. The caller must not change data's bytes
// afterwards while the reference is held.
func (b *RecvBuffer) InsertLent(offset uint64, data []byte, fin bool, h Holder) error {
	if len(data) == 0 && !fin {
		return nil
	}
	n := uint64(len(data))
	if offset > math.MaxUint64-n {
		return ErrFlowControl
	}
	end := offset + n
	if b.hasFin {
		if end > b.final || (fin && end != b.final) {
			return ErrFinalSize
		}
	} else if fin && end < b.highest {
		return ErrFinalSize
	}
	if end > b.limit {
		return ErrFlowControl
	}
	if s := max(offset, b.read); s < end && !b.closed && !b.reset {
		p := data[s-offset:]
		if !b.matches(s, end, p) {
			return ErrDataMismatch
		}
		if s > b.contig && !b.got.Add(s, end) {
			return ErrTooFragmented
		}
		if !b.lend(s, end, p, h) {
			need := int(end - b.read) // ≤ limit - read ≤ window
			b.ring.grow(need, max(b.window, need), b.read, b.highest)
			b.ring.put(s, p)
		}
		if s <= b.contig && end > b.contig {
			b.contig = end
			for len(b.got.r) > 0 && b.got.r[0].start <= b.contig {
				b.contig = max(b.contig, b.got.r[0].end)
				b.got.splice(0, 1, span{}, span{}, 0)
			}
		}
	}
	b.highest = max(b.highest, end)
	if fin {
		b.final, b.hasFin = end, true
	}
	return nil
}

// lend keeps p, the data for [s, end) with s ≥ read, as a lent piece if
// it may (see InsertLent) and reports whether it did. The bytes below
// contig were checked by matches; only those above are kept.
func (b *RecvBuffer) lend(s, end uint64, p []byte, h Holder) bool {
	if h == nil || s > b.contig || end < b.contig+minLend || len(b.got.r) > 0 || b.lent.full() {
		return false
	}
	if b.lent.empty() && b.contig != b.read || !b.lent.empty() && b.lent.end != b.contig {
		return false // readable bytes in the ring come first
	}
	ref := h.Hold()
	if ref == nil {
		return false
	}
	b.lent.push(b.contig, p[b.contig-s:], ref)
	return true
}

// matches reports whether p, the data for [s, end), agrees with every byte
// already received in that span.
func (b *RecvBuffer) matches(s, end uint64, p []byte) bool {
	if s < b.contig && !b.equalStored(s, p[:min(end, b.contig)-s]) {
		return false
	}
	for i := b.got.endAbove(s); i < len(b.got.r) && b.got.r[i].start < end; i++ {
		lo, hi := max(s, b.got.r[i].start), min(end, b.got.r[i].end)
		if !b.ring.equal(lo, p[lo-s:hi-s]) {
			return false
		}
	}
	return true
}

// equalStored reports whether the contiguous bytes stored at
// [off, off+len(p)), read ≤ off and off+len(p) ≤ contig, equal p: the lent
// pieces hold the first of them, the ring the rest.
func (b *RecvBuffer) equalStored(off uint64, p []byte) bool {
	if !b.lent.empty() && off < b.lent.end {
		c := int(min(uint64(len(p)), b.lent.end-off))
		if !b.lent.equal(off, p[:c]) {
			return false
		}
		off, p = off+uint64(c), p[c:]
	}
	return b.ring.equal(off, p)
}

// Read copies contiguous received bytes into p and returns their number.
// It never blocks: (0, nil) means nothing is readable yet. Once every byte
// up to the final size has been read it returns exactly (0, io.EOF), never
// with data, and keeps returning it. After Close it returns [ErrClosed],
// after Reset [ErrReset].
func (b *RecvBuffer) Read(p []byte) (n int, err error) {
	switch {
	case b.reset:
		return 0, ErrReset
	case b.closed:
		return 0, ErrClosed
	}
	avail := b.contig - b.read
	if avail == 0 {
		if b.hasFin && b.read == b.final {
			return 0, io.EOF
		}
		return 0, nil
	}
	n = int(min(avail, uint64(len(p))))
	k := 0
	if !b.lent.empty() {
		k = b.lent.read(p[:n])
	}
	b.ring.get(p[k:n], b.read+uint64(k))
	b.read += uint64(n)
	if b.hasFin && b.read == b.final {
		b.ring.release()
	}
	return n, nil
}

// ShouldUpdateWindow reports whether the engine should send MAX_DATA: the
// reader has consumed at least half a window since the last announcement
// (or the window grew). If ok, newLimit (ReadOffset()+Window()) becomes
// Limit() at once and the engine must send it, and resend Limit() if that
// packet is lost. After the final size is known no update is needed.
func (b *RecvBuffer) ShouldUpdateWindow() (newLimit uint64, ok bool) {
	if b.hasFin || b.closed || b.reset {
		return b.limit, false
	}
	nl := b.read + uint64(b.window)
	if nl <= b.limit || nl-b.limit < uint64(b.window/2) {
		return b.limit, false
	}
	b.limit = nl
	return nl, true
}

// AnnounceLimit raises Limit() to ReadOffset()+Window() if that is higher
// and returns it: for a MAX_DATA the engine sends on its own initiative,
// for example in answer to BLOCKED or in ACCEPT after SetWindow.
func (b *RecvBuffer) AnnounceLimit() uint64 {
	if !b.closed && !b.reset {
		b.limit = max(b.limit, b.read+uint64(b.window))
	}
	return b.limit
}

// SetWindow grows the window to n bytes (at most MaxWindow); a smaller n
// is ignored, as windows only grow. The peer learns of it through the next
// announced limit.
func (b *RecvBuffer) SetWindow(n int) {
	if n > b.window {
		b.window = min(n, MaxWindow)
	}
}

// GrowRanges raises the most intervals the buffer tracks beyond the
// contiguous prefix to maxRanges (never lowers it): for a session whose
// packets come by several paths, whose delays interleave every packet of
// the slower path among the faster one's (each a gap until it arrives).
// The set's storage still grows only as gaps appear.
func (b *RecvBuffer) GrowRanges(maxRanges int) { b.got.Grow(maxRanges) }

// MaxRanges returns the most intervals the buffer tracks beyond the
// contiguous prefix.
func (b *RecvBuffer) MaxRanges() int { return b.got.MaxRanges() }

// ReleaseIdle gives the ring back when it holds nothing to read: every
// byte received so far has been read and none arrived out of order. The
// next Insert that stores data takes a ring again, so this changes
// nothing else. The engine calls it when its session ends, after which no
// data arrives: the ring of a stream whose end never came goes back to its
// pool (ring.go) instead of waiting for the garbage collector.
func (b *RecvBuffer) ReleaseIdle() {
	if b.read == b.contig && len(b.got.r) == 0 {
		b.ring.release()
	}
}

// Close ends the receiving side from the local end (the application reads
// no more; the engine sends CLOSE on the channel, §5.3): buffered data and
// the ring are dropped. Later data is still checked and counted (see
// Insert) until the peer's FIN or RESET fixes the final size.
func (b *RecvBuffer) Close() {
	b.closed = true
	b.ring.release()
	b.lent.release()
	b.got.Clear()
}

// Reset applies the peer's RESET carrying finalSize (§5.7): the final size
// must agree with an earlier FIN, with the data received and with the
// limit, else [ErrFinalSize] or [ErrFlowControl] and nothing changes. Then
// buffered data and the ring are dropped, and HighestReceived becomes the
// final size. A repeated RESET with the same final size is harmless.
func (b *RecvBuffer) Reset(finalSize uint64) error {
	switch {
	case b.hasFin && finalSize != b.final, finalSize < b.highest:
		return ErrFinalSize
	case finalSize > b.limit:
		return ErrFlowControl
	}
	b.final, b.hasFin, b.highest = finalSize, true, finalSize
	b.reset = true
	b.ring.release()
	b.lent.release()
	b.got.Clear()
	return nil
}
