// Package buf holds the data structures of Haven's session engine (package
// mux): interval sets, the send and receive buffers of a reliable stream
// channel (docs/PROTOCOL.md §5.8, flow control §5.4) and the reassembler of
// fragmented datagrams (§5.9).
//
// # Concurrency
//
// Nothing here is safe for concurrent use, and nothing locks. The engine
// owns each value from the one goroutine that runs its session; a value
// must never be shared between goroutines without external synchronisation.
//
// # Bounds
//
// Every structure has a fixed cap chosen at construction: a [RangeSet]
// holds at most maxRanges intervals, a [SendBuffer] at most its capacity in
// bytes, a [RecvBuffer] at most its window (≤ [MaxWindow]) and a
// [Reassembler] at most maxBytes of buffers and maxPending datagrams.
// Nothing a peer sends can grow them: input that would need more is refused
// with an error or, where the documentation says so, makes the structure
// forget the least useful state (the oldest).
//
// No method panics on any argument. Out-of-range or inconsistent arguments
// are clipped, ignored or reported as errors, as each method documents.
//
// # Allocation
//
// Byte storage is allocated lazily, grows by doubling up to its cap, and is
// then reused: in steady state no operation allocates. The buffers drop
// their storage as soon as they no longer need it (everything
// acknowledged, read, reset or released), so a session that opens and
// closes thousands of channels holds storage only for the live ones. A
// stream ring's array of 4 to 64 KiB goes back to a process-wide pool
// (sync.Pool, ring.go) and is cleared first; other storage goes to the
// garbage collector. Either way new storage starts zeroed. A structure
// that owns a pooled array must not be copied while it holds it.
//
// # Offsets
//
// Stream offsets are absolute uint64 byte offsets. Intervals are half-open,
// [start, end). The engine restores a full offset from the 32 bits on the
// wire (wire.FullStreamOffset) using [RecvBuffer.Contiguous] as the
// expected offset.
package buf

import "errors"

const (
	// MaxWindow is the largest receive window of a stream channel: limit
	// minus bytes consumed never exceeds 2^30 (PROTOCOL.md §5.4, §5.8). It
	// equals wire.MaxStreamWindow.
	MaxWindow = 1 << 30

	// MaxSendCapacity is the largest capacity of a [SendBuffer].
	MaxSendCapacity = 1 << 30

	// MaxDatagramSize is the largest datagram (PROTOCOL.md §5.9). It equals
	// wire.MaxDatagramSize.
	MaxDatagramSize = 65507

	// DefaultMaxRanges is the number of intervals the stream buffers track
	// when the constructor is given maxRanges ≤ 0.
	DefaultMaxRanges = 128

	// MaxRangesLimit bounds maxRanges of every [RangeSet] (16 bytes each).
	MaxRangesLimit = 1 << 16
)

var (
	// ErrDataMismatch: stream data overlaps data already received but
	// differs from it. PROTOCOL.md §5.8 makes this a PROTOCOL_ERROR.
	ErrDataMismatch = errors.New("buf: overlapping stream data differs from data already received")

	// ErrFlowControl: stream data beyond the announced flow-control limit.
	// The engine closes the session with FLOW_CONTROL_ERROR (§5.4).
	ErrFlowControl = errors.New("buf: stream data beyond the flow-control limit")

	// ErrFinalSize: a second, different final size, data beyond the final
	// size, or a final size below data already received.
	ErrFinalSize = errors.New("buf: stream final size violated")

	// ErrTooFragmented: accepting the data would need more intervals than
	// the structure tracks. Nothing changed. For a stream, the engine drops
	// the packet without acknowledging it, so the sender retransmits it
	// later; the data that fills the first gap is always accepted, so the
	// stream still makes progress.
	ErrTooFragmented = errors.New("buf: received data too fragmented")

	// ErrClosed: Read after [RecvBuffer.Close].
	ErrClosed = errors.New("buf: receive side closed")

	// ErrReset: Read after [RecvBuffer.Reset] (the peer abandoned the stream).
	ErrReset = errors.New("buf: stream reset by peer")

	// ErrDatagramTooLarge: a fragment's total exceeds MaxDatagramSize, or
	// the datagram cannot fit in the reassembler's memory even when empty.
	ErrDatagramTooLarge = errors.New("buf: datagram too large")

	// ErrBadFragment: an empty fragment, one that runs past its total, or a
	// total that differs from earlier fragments of the same sequence number.
	ErrBadFragment = errors.New("buf: inconsistent datagram fragment")

	// ErrFragmentMismatch: overlapping fragments of one datagram differ.
	ErrFragmentMismatch = errors.New("buf: overlapping datagram fragments differ")
)
