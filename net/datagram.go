package net

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// DatagramConn is a datagram channel opened on a session
// (Session.OpenDatagram): like a connected UDP socket, it is a net.Conn
// whose Read returns one whole datagram and whose Write sends one, and a
// net.PacketConn whose only peer is the session's. Write never waits for
// the peer's application (see PacketConn.WriteTo). The peer receives the
// datagrams on its PacketConn (ListenPacket, or Host.ListenPacket for the
// service name), and its replies to this session come back here.
type DatagramConn struct {
	dc      *endpoint.DatagramChannel
	svc     *endpoint.DatagramService
	laddr   *Addr
	raddr   *Addr
	rd, wd  *endpoint.Deadline
	ctx     context.Context
	cancel  context.CancelFunc
	service string
}

var (
	_ net.Conn       = (*DatagramConn)(nil)
	_ net.PacketConn = (*DatagramConn)(nil)
)

// OpenDatagram opens a datagram channel to service on the session, without
// waiting for the peer: a service the peer does not serve shows as an
// error on a later Read or Write. One session carries stream and datagram
// channels alike, with one handshake.
func (s *Session) OpenDatagram(service string, priority uint8) (*DatagramConn, error) {
	raddr := s.RemoteAddr()
	dc, svc, err := s.s.OpenDatagramChannel(service, priority)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "haven", Source: s.local, Addr: raddr, Err: mapErr(err)}
	}
	c := &DatagramConn{dc: dc, svc: svc, laddr: sourceAddr(s.local, raddr.Addr), raddr: raddr,
		rd: endpoint.NewDeadline(), wd: endpoint.NewDeadline(), service: service}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Read reads one datagram into p, truncating it if p is short (as UDP
// does), and returns how many bytes were copied.
func (c *DatagramConn) Read(p []byte) (int, error) {
	n, err := c.svc.ReadChannel(c.ctx, c.rd.Wait(), p, c.dc)
	if err != nil {
		return 0, c.opError("read", err)
	}
	return min(n, len(p)), nil
}

// ReadFrom is Read, with the peer's address.
func (c *DatagramConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, err := c.Read(p)
	if err != nil {
		return 0, nil, err
	}
	return n, c.raddr, nil
}

// Write sends p as one datagram (up to 65,507 bytes).
func (c *DatagramConn) Write(p []byte) (int, error) {
	if len(p) > wire.MaxDatagramSize {
		return 0, c.opError("write", mux.ErrDatagramSize)
	}
	if c.wd.Passed() {
		return 0, c.opError("write", errDeadline())
	}
	if err := c.dc.Send(p, c.wd.Wait()); err != nil {
		return 0, c.opError("write", err)
	}
	return len(p), nil
}

// WriteTo is Write; addr must be the session's peer (its key), as a
// connected UDP socket sends only to its peer.
func (c *DatagramConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*Addr)
	if !ok && addr != nil {
		ra, err := resolveAddr(context.Background(), time.Time{}, "haven", addr.String())
		if err != nil {
			return 0, &net.OpError{Op: "write", Net: "haven", Source: c.laddr, Addr: addr, Err: err}
		}
		a = &ra
	}
	if a == nil || a.Key != c.raddr.Key {
		return 0, &net.OpError{Op: "write", Net: "haven", Source: c.laddr, Addr: addr, Err: errNotPeer}
	}
	return c.Write(p)
}

// Close ends the channel (the session stays); blocked calls return.
func (c *DatagramConn) Close() error {
	select {
	case <-c.ctx.Done():
		return c.opError("close", net.ErrClosed)
	default:
	}
	c.cancel()
	c.dc.Close()
	c.svc.Close()
	return nil
}

// Session returns the session the channel belongs to.
func (c *DatagramConn) Session() *Session { return &Session{s: c.dc.Session(), local: c.laddr} }

func (c *DatagramConn) LocalAddr() net.Addr  { return c.laddr }
func (c *DatagramConn) RemoteAddr() net.Addr { return c.raddr }
func (c *DatagramConn) SetDeadline(t time.Time) error {
	c.rd.Set(t)
	c.wd.Set(t)
	return nil
}
func (c *DatagramConn) SetReadDeadline(t time.Time) error  { c.rd.Set(t); return nil }
func (c *DatagramConn) SetWriteDeadline(t time.Time) error { c.wd.Set(t); return nil }

func (c *DatagramConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "haven", Source: c.laddr, Addr: c.raddr, Err: mapErr(err)}
}

// errNotPeer is the cause of a DatagramConn.WriteTo to another peer.
var errNotPeer = &net.AddrError{Err: "address is not the session's peer"}

// Errors a Host or listener may wrap in a *net.OpError.
var (
	// ErrServiceTaken: the service already has a listener on the socket.
	ErrServiceTaken = endpoint.ErrServiceTaken
	// ErrTooManySessions: the socket holds Config.MaxSessions sessions.
	ErrTooManySessions = endpoint.ErrTooMany
)

// mapErr turns the layers' errors into what net code expects: closed
// things are net.ErrClosed, context ends are their own errors.
func mapErr(err error) error {
	switch {
	case errors.Is(err, endpoint.ErrClosed), errors.Is(err, context.Canceled):
		return net.ErrClosed
	}
	return err
}
