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
// packet within the largest packet size. It never reads past the packet it
// returns, and allocates nothing after NewReader.
type Reader struct {
	r   io.Reader
	max int    // largest packet, header included
	buf []byte // one packet: header, then payload
}

// NewReader returns a Reader of r for packets of at most maxPacket bytes,
// header included (wire.MaxPacketSize when maxPacket is out of range).
func NewReader(r io.Reader, maxPacket int) *Reader {
	if maxPacket < wire.MinPacketSize || maxPacket > wire.MaxPacketSize {
		maxPacket = wire.MaxPacketSize
	}
	return &Reader{r: r, max: maxPacket, buf: make([]byte, maxPacket)}
}

// ReadPacket reads the next packet. The returned slice is the Reader's
// buffer: it is valid until the next ReadPacket, and its payload length
// field still holds the stream's value (the cryptography ignores that
// field, PROTOCOL.md §3.4; a datagram transport's receiver must not see a
// non-zero one, so set it to zero with wire.PutLength before handing the
// packet on to code that expects the datagram form). Errors: io.EOF
// between packets (the stream ended cleanly), io.ErrUnexpectedEOF within
// one, ErrForeign, ErrFrame, or the stream's own error.
func (r *Reader) ReadPacket() ([]byte, error) {
	h := r.buf[:wire.HeaderLen]
	if _, err := io.ReadFull(r.r, h); err != nil {
		return nil, err
	}
	if _, ok := wire.SuiteOf(h); !ok {
		return nil, ErrForeign
	}
	if h[wire.OffReserved] != 0 || h[wire.OffFlags]&^byte(wire.FlagHandshake|wire.FlagKeyPhase|wire.FlagSpin) != 0 {
		return nil, ErrFrame
	}
	n := int(binary.LittleEndian.Uint16(h[wire.OffLength:]))
	if n == 0 || wire.HeaderLen+n > r.max {
		return nil, ErrFrame
	}
	p := r.buf[:wire.HeaderLen+n]
	if _, err := io.ReadFull(r.r, p[wire.HeaderLen:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return p, nil
}

// ReadFirstPacket reads a new connection's first packet within
// FirstPacketTimeout of now, then clears the read deadline. A listener
// calls it before it spends anything else on the connection.
func ReadFirstPacket(c net.Conn, r *Reader) ([]byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(FirstPacketTimeout)); err != nil {
		return nil, err
	}
	p, err := r.ReadPacket()
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
