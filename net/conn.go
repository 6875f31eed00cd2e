package net

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/havenproto/haven/internal/endpoint"
)

// Conn is a stream channel: a net.Conn with half-close. Reads end with a
// bare io.EOF at the clean end of the peer's stream; other errors are
// *net.OpError values, with net.ErrClosed after Close and a timeout error
// (Timeout() true) when a deadline passes. As on a TCP connection,
// concurrent Writes (and ReadFroms) do not interleave: each queues its
// bytes whole, one after the other.
type Conn struct {
	st            *endpoint.Stream
	laddr, raddr  *Addr
	closeEndpoint func() // for a Conn that owns its dialer's endpoint
	// peer is raddr's storage and sess what Session returns, when newConn
	// made the Conn: one allocation for all three, as a Conn is made for
	// every channel opened or accepted.
	peer Addr
	sess Session
	// local is LocalAddr's answer once found (sourceAddr): laddr with
	// the source IP toward the peer when the socket's is unspecified.
	local atomic.Pointer[Addr]
}

// newConn makes the Conn of stream st, with the remote address made from
// the session's peer key and current address.
func newConn(st *endpoint.Stream, laddr *Addr) *Conn {
	s := st.Session()
	c := &Conn{st: st, laddr: laddr, peer: Addr{Key: s.Peer(), Addr: s.RemoteAddr()},
		sess: Session{s: s, local: laddr}}
	c.raddr = &c.peer
	return c
}

var (
	_ net.Conn      = (*Conn)(nil)
	_ io.ReaderFrom = (*Conn)(nil)
)

func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.st.Read(p)
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.st.Write(p)
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// ReadFrom implements io.ReaderFrom, which io.Copy uses: r's data goes
// straight into the channel's send buffer, with no intermediate copy. It
// returns at r's io.EOF (as nil) or at the first error, which is a
// *net.OpError as for *net.TCPConn.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.st.ReadFrom(r)
	if err != nil {
		err = c.opError("readfrom", err)
	}
	return n, err
}

// CloseWrite ends the sending direction; the peer reads io.EOF.
func (c *Conn) CloseWrite() error {
	if err := c.st.CloseWrite(); err != nil {
		return c.opError("close", err)
	}
	return nil
}

// Close ends both directions and unblocks every Read and Write. Data
// already written is still delivered.
func (c *Conn) Close() error {
	if err := c.st.Close(); err != nil {
		return c.opError("close", err)
	}
	if c.closeEndpoint != nil {
		c.closeEndpoint()
	}
	return nil
}

// LocalAddr returns the channel's local address: the socket's port and
// key, with the source IP the system uses toward the peer when the socket
// is bound to the unspecified address (0.0.0.0 or ::), as a TCP
// connection's LocalAddr shows.
func (c *Conn) LocalAddr() net.Addr {
	if a := c.local.Load(); a != nil {
		return a
	}
	a := sourceAddr(c.laddr, c.raddr.Addr)
	c.local.Store(a)
	return a
}

func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

func (c *Conn) SetDeadline(t time.Time) error      { return c.st.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.st.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.st.SetWriteDeadline(t) }

// Session returns the session the channel belongs to.
func (c *Conn) Session() *Session {
	if c.sess.s != nil {
		return &c.sess
	}
	return &Session{s: c.st.Session(), local: c.laddr}
}

func (c *Conn) opError(op string, err error) error {
	if errors.Is(err, endpoint.ErrClosed) {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: "haven", Source: c.laddr, Addr: c.raddr, Err: err}
}
