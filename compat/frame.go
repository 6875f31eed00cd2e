package compat

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"

	"github.com/havenproto/haven/wire"
)

// Framing errors. A stream that returns one of them is closed by its owner
// without a byte written back (docs/PROTOCOL.md §8): the other end is not
// speaking Haven, or not well.
var (
	// ErrForeign: the stream's first bytes are not a packet of haven/1 in
	// either construction.
	ErrForeign = errors.New("compat: not a Haven stream")
	// ErrFrame: a packet header of the right protocol with a payload
	// length of zero, or one that makes the packet larger than the largest
	// packet the reader takes, or a header with reserved bits set.
	ErrFrame = errors.New("compat: malformed packet on a stream transport")
)

// FirstPacketTimeout bounds the wait for a new stream's first packet. A
// connection that says nothing, or too little, for so long is dropped: it
// holds a socket and a goroutine of the listener, so it must cost its
// sender more than it costs us (issue #13).
const FirstPacketTimeout = 5 * time.Second

// Reader reads Haven packets from a byte stream, each delimited by its
// header's payload length field (docs/PROTOCOL.md §8). It checks every
// header before it reads the rest: the protocol id (either construction),
// the reserved bits, and a payload length that is not zero and keeps the
// packet within the largest packet size.
//
// Small packets are read ahead, many per system call, through a buffer of
// readAhead bytes; the bulk of a large one is read straight into the
// destination (ReadPacketTo), and after a large packet the next header is
// read alone, so that a stream of large packets is copied once, by the
// kernel. Nothing is allocated after the first packet.
type Reader struct {
	r   io.Reader
	max int // largest packet, header included
	// buf[start:end] is read from the stream and not yet returned.
	buf        []byte
	start, end int
	// large says the last packet was read straight into its destination:
	// the next read takes no more than the header it needs.
	large bool
	pkt   []byte // ReadPacket's packet, made on first use
}

// readAhead is the Reader's buffer for headers and small packets; a packet
// larger than it is read into its destination directly.
const readAhead = 16 << 10

// NewReader returns a Reader of r for packets of at most maxPacket bytes,
// header included (wire.MaxPacketSize when maxPacket is out of range).
func NewReader(r io.Reader, maxPacket int) *Reader {
	if maxPacket < wire.MinPacketSize || maxPacket > wire.MaxPacketSize {
		maxPacket = wire.MaxPacketSize
	}
	return &Reader{r: r, max: maxPacket, buf: make([]byte, readAhead)}
}

// ReadPacket reads the next packet into the Reader's own buffer: the
// returned slice is valid until the next read. Its payload length field
// still holds the stream's value (the cryptography ignores that field,
// PROTOCOL.md §3.4; a datagram transport's receiver must not see a
// non-zero one, so set it to zero with wire.PutLength before handing the
// packet on to code that expects the datagram form). Errors: io.EOF
// between packets (the stream ended cleanly), io.ErrUnexpectedEOF within
// one, ErrForeign, ErrFrame, or the stream's own error.
func (r *Reader) ReadPacket() ([]byte, error) { return r.ReadPacketTo(nil) }

// ReadPacketTo is ReadPacket into a destination of the caller's: once the
// header has passed the checks, it calls dst with the packet's size and
// reads the packet into the slice dst returns, which must be that long
// (nil: the packet is refused with ErrFrame). It returns that slice. A nil
// dst reads into the Reader's own buffer, as ReadPacket.
func (r *Reader) ReadPacketTo(dst func(n int) []byte) ([]byte, error) {
	if err := r.fill(wire.HeaderLen); err != nil {
		return nil, err
	}
	h := r.buf[r.start : r.start+wire.HeaderLen]
	if _, ok := wire.SuiteOf(h); !ok {
		return nil, ErrForeign
	}
	if h[wire.OffReserved] != 0 || h[wire.OffFlags]&^byte(wire.FlagHandshake|wire.FlagKeyPhase|wire.FlagSpin) != 0 {
		return nil, ErrFrame
	}
	n := wire.HeaderLen + int(binary.LittleEndian.Uint16(h[wire.OffLength:]))
	if n == wire.HeaderLen || n > r.max {
		return nil, ErrFrame
	}
	r.large = n > len(r.buf)
	if !r.large {
		if err := r.fill(n); err != nil {
			return nil, err
		}
	}
	var p []byte
	if dst != nil {
		p = dst(n)
	} else {
		if r.pkt == nil {
			r.pkt = make([]byte, r.max)
		}
		p = r.pkt[:n]
	}
	if len(p) != n {
		return nil, ErrFrame
	}
	c := copy(p, r.buf[r.start:r.end])
	r.start += c
	if c < n {
		if _, err := io.ReadFull(r.r, p[c:]); err != nil {
			return nil, unexpected(err)
		}
	}
	return p, nil
}

// fill reads until need bytes (at most len(r.buf)) are buffered. After a
// large packet it reads no more than need: the rest of the stream is
// likely another large packet, better read into its destination.
func (r *Reader) fill(need int) error {
	if r.end-r.start >= need {
		return nil
	}
	if r.start > 0 { // keep the buffered bytes at the front
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	limit := len(r.buf)
	if r.large {
		limit = need
	}
	for r.end < need {
		k, err := r.r.Read(r.buf[r.end:limit])
		r.end += k
		if r.end >= need {
			return nil
		}
		if err != nil {
			if r.end > 0 {
				return unexpected(err)
			}
			return err
		}
	}
	return nil
}

// unexpected turns io.EOF within a packet into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadFirstPacket reads a new connection's first packet within
// FirstPacketTimeout of now, as r.ReadPacketTo(dst) would, then clears
// the read deadline. A listener calls it before it spends anything else on
// the connection.
func ReadFirstPacket(c net.Conn, r *Reader, dst func(n int) []byte) ([]byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(FirstPacketTimeout)); err != nil {
		return nil, err
	}
	p, err := r.ReadPacketTo(dst)
	if err != nil {
		return nil, err
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return p, nil
}

// Frame sets the payload length field of the packet pkt (header and
// everything after it, tag included) to the stream form: the bytes after
// the header. It fails with ErrFrame for a packet that has no payload or
// does not fit the 16-bit field.
func Frame(pkt []byte) error {
	n := len(pkt) - wire.HeaderLen
	if n <= 0 || n > 0xffff {
		return ErrFrame
	}
	wire.PutLength(pkt, uint16(n))
	return nil
}

// WritePackets frames each packet (Frame, in place) and writes them to w
// in order, with one writev system call where w supports it (a
// *net.TCPConn does, through net.Buffers). On error some packets may have
// been written; the stream is then unusable, as a TCP connection is after
// a failed write. scratch is reused for the net.Buffers value; pass the
// previous call's result to avoid an allocation per call.
func WritePackets(w io.Writer, pkts [][]byte, scratch net.Buffers) (net.Buffers, error) {
	bufs := append(scratch[:0], pkts...)
	for _, p := range bufs {
		if err := Frame(p); err != nil {
			return bufs[:0], err
		}
	}
	keep := bufs[:0] // WriteTo consumes the slice; keep its backing array
	_, err := bufs.WriteTo(w)
	return keep, err
}
