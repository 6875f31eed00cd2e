// Package udp is Haven's socket layer: one UDP socket that serves every
// session of a listener or dialer, read and written in batches.
//
// A [Conn] moves [Message] values. On Linux, for a socket it owns directly
// (from [Listen], or a *net.UDPConn given to [FromPacketConn]), it uses:
//
//   - recvmmsg and sendmmsg, so one system call moves up to
//     [Options.BatchSize] datagrams;
//   - UDP generic segmentation offload (GSO, the UDP_SEGMENT control
//     message, Linux 4.18): a Message with Segment > 0 carries several
//     datagrams back to back and goes to the kernel as one send;
//   - UDP generic receive offload (GRO, the UDP_GRO socket option, Linux
//     5.0): the kernel may hand over several equal-size datagrams from one
//     peer in one read, and the Message reports their size in Segment
//     ([SplitSegments] cuts them apart again).
//
// [Conn.Caps] says which of these are active. Everything degrades
// transparently: without GSO a segmented Message is sent as separate
// datagrams, and if the kernel rejects a GSO send at run time (EIO from a
// device without checksum offload, EINVAL, ...) GSO is switched off for the
// socket and the rejected datagrams are sent again without it. Any other
// net.PacketConn is served one datagram at a time through its interface.
//
// The system calls are made here directly, on golang.org/x/sys/unix and
// syscall.RawConn, rather than through golang.org/x/net's
// ipv4.PacketConn.ReadBatch: that one allocates a net.IP and a *net.UDPAddr
// for every datagram it receives, and this layer must not allocate per
// packet. The msghdr, iovec, sockaddr and control-message scratch space is
// reused: a Conn's write scratch grows to the largest batch it has written
// (at most the batch size), and read scratch is borrowed from a
// process-wide bounded pool for the time of each read, so a reader waiting
// on an empty socket holds none. ReadBatch, ReadBatchLent and WriteBatch
// allocate nothing in steady state (the generic net.PacketConn path does
// allocate).
//
// Buffers belong to the caller. ReadBatch fills the callers' Buf slices and
// WriteBatch reads them during the call only; a Conn keeps no reference to
// them once the call returns.
//
// Concurrency: ReadBatch may be called by one goroutine at a time (more
// are safe but are serialised by a mutex); WriteBatch may be called by any
// number of goroutines (their system calls are serialised by a mutex that
// guards the write-side scratch). Close, LocalAddr, Caps and the deadline
// setters may be called at any time from any goroutine.
package udp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havenproto/haven/alignment"
)

// Limits of the kernel and of the protocol.
const (
	// MaxSegments is the most datagrams one GSO send may carry
	// (UDP_MAX_SEGMENTS in the kernel).
	MaxSegments = 64
	// MaxPayload is the largest UDP payload over IPv4 (65,535 - 20 - 8),
	// and the cap used for the total payload of one GSO send.
	MaxPayload = 65507
	// GROBufferSize is the Buf length a reader needs, with GRO active, to
	// be sure a coalesced read is never truncated.
	GROBufferSize = 65535

	// DefaultBufferSize is the default socket receive and send buffer.
	DefaultBufferSize = 7 << 20
	// DefaultBatchSize is the default number of datagrams per system call.
	DefaultBatchSize = 64
	// maxBatchSize is the kernel's cap on recvmmsg/sendmmsg's vlen
	// (UIO_MAXIOV).
	maxBatchSize = 1024
)

// Message is one datagram, or with GSO/GRO several equal-size datagrams
// back to back, read or to write.
type Message struct {
	// Buf is the caller's buffer. Read: filled up to N (with GRO active
	// give it GROBufferSize bytes). Write: the whole of Buf is the payload;
	// with Segment > 0 it holds the datagrams back to back.
	Buf []byte
	// N is the number of bytes read into Buf (read only).
	N int
	// Addr is the source (read, IPv4-mapped addresses unmapped) or the
	// destination (write; an invalid Addr sends to a connected socket's
	// peer).
	Addr netip.AddrPort
	// Segment is the datagram size of a segmented message: every datagram
	// is Segment bytes except the last, which may be shorter. 0 means Buf
	// (write) or Buf[:N] (read) is a single datagram.
	Segment int
	// Truncated reports that the datagram, or GRO train, read was longer
	// than Buf and the excess was discarded (read only).
	Truncated bool
}

// Options configures a Conn. The zero value is the default.
type Options struct {
	// ReadBuffer and WriteBuffer are the socket buffer sizes to ask for:
	// 0 means DefaultBufferSize, a negative value leaves the system's
	// default. As root SO_RCVBUFFORCE/SO_SNDBUFFORCE lift the
	// net.core.rmem_max/wmem_max cap; otherwise the kernel clamps.
	ReadBuffer, WriteBuffer int
	// DisableGSO, DisableGRO and DisableBatch turn the offloads and
	// recvmmsg/sendmmsg off (DisableBatch: one datagram per recvmsg or
	// sendmsg call).
	DisableGSO, DisableGRO, DisableBatch bool
	// BatchSize is the most datagrams per system call: 0 means
	// DefaultBatchSize; values above 1024 are lowered to 1024.
	BatchSize int
}

// Caps describes what a Conn has active.
type Caps struct {
	Batch bool // recvmmsg/sendmmsg (false: one datagram per system call)
	GSO   bool // UDP_SEGMENT sends; turns false if the kernel rejects one
	GRO   bool // UDP_GRO coalesced reads
	// DontFragment: datagrams leave whole with the don't-fragment bit, and
	// one larger than the interface MTU fails to send (path MTU discovery
	// relies on it; without it, the endpoint keeps the base packet size).
	DontFragment bool
	// Reliable: the transport delivers every packet, in order, or fails
	// (a stream transport; never a UDP socket). Sessions on it do not
	// resend data on a probe timeout (mux.Config.ReliableCarrier).
	Reliable bool
	// ReadBuffer and WriteBuffer are SO_RCVBUF and SO_SNDBUF as the kernel
	// reports them (Linux doubles the requested size for its bookkeeping);
	// 0 when unknown.
	ReadBuffer, WriteBuffer int
	// BatchSize is the most datagrams moved per system call.
	BatchSize int
}

// Conn is a UDP socket read and written in batches. See the package
// documentation for buffer ownership and concurrency.
type Conn struct {
	pc    net.PacketConn
	sys   *sysConn // nil: the generic path, one datagram at a time through pc
	laddr netip.AddrPort
	naddr net.Addr // pc.LocalAddr(), for error values
	caps  Caps     // fixed at construction; GSO is read from gso instead
	gso   atomic.Bool

	closed atomic.Bool

	// rmu serialises readers: it guards the read-side scratch in sys.
	rmu sync.Mutex
	// wmu serialises writers on the direct path: it guards the write-side
	// scratch in sys (mmsghdrs, iovecs, sockaddrs, control messages, the
	// zone cache) for the whole of a WriteBatch.
	wmu sync.Mutex
}

// Listen opens a UDP socket on laddr ("udp", "udp4" or "udp6"; the zero
// AddrPort means any address and port) and wraps it as by FromPacketConn.
func Listen(network string, laddr netip.AddrPort, opts Options) (*Conn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	uc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(laddr))
	if err != nil {
		return nil, err
	}
	c, err := FromPacketConn(uc, opts)
	if err != nil {
		uc.Close()
		return nil, err
	}
	return c, nil
}

// FromPacketConn wraps an existing socket, for instance one passed by
// systemd socket activation (net.FilePacketConn returns a *net.UDPConn).
// The Conn takes ownership: its Close closes pc. If FromPacketConn fails,
// pc is left open and still the caller's.
//
// Batching, GSO and GRO need a *net.UDPConn on Linux; any other
// net.PacketConn is read and written one datagram at a time through its
// methods, and Caps reports nothing active.
func FromPacketConn(pc net.PacketConn, opts Options) (*Conn, error) {
	if pc == nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Err: errors.New("nil net.PacketConn")}
	}
	c := &Conn{pc: pc, naddr: pc.LocalAddr()}
	c.laddr = addrPortOf(c.naddr)
	if uc, ok := pc.(*net.UDPConn); ok {
		s, err := newSysConn(uc, opts, &c.caps)
		if err != nil {
			return nil, &net.OpError{Op: "listen", Net: "udp", Source: c.naddr, Err: err}
		}
		c.sys = s
		c.gso.Store(c.caps.GSO)
	}
	return c, nil
}

// LocalAddr returns the socket's local address (IPv4-mapped addresses
// unmapped).
func (c *Conn) LocalAddr() netip.AddrPort { return c.laddr }

// Caps reports what is active now.
func (c *Conn) Caps() Caps {
	caps := c.caps
	caps.GSO = c.gso.Load()
	return caps
}

// Close closes the socket. A ReadBatch or WriteBatch blocked in, or
// called after, Close returns an error satisfying
// errors.Is(err, net.ErrClosed).
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.pc.Close()
}

// SetReadDeadline sets the deadline for ReadBatch, as
// net.PacketConn.SetReadDeadline does; a zero time means none.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for WriteBatch; a zero time means
// none.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.pc.SetWriteDeadline(t) }

// ReadBatch blocks until at least one datagram is available, then fills
// as many of msgs as are available at once (at most Caps().BatchSize) and
// returns how many. For each filled Message it sets N, Addr, Segment and
// Truncated; messages past n are left untouched. With GRO active a
// Message may hold several datagrams: see [SplitSegments]. With an empty
// msgs it returns 0, nil at once.
//
// Errors are *net.OpError values; after Close they satisfy
// errors.Is(err, net.ErrClosed), after the read deadline
// errors.Is(err, os.ErrDeadlineExceeded).
func (c *Conn) ReadBatch(msgs []Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return 0, c.opError("read", net.ErrClosed, netip.AddrPort{})
	}
	if c.sys == nil {
		return c.readGeneric(&msgs[0])
	}
	return c.sys.read(c, msgs, nil)
}

// Lender lends a reader its buffers for the time it is reading (see
// [Conn.ReadBatchLent]). Its methods are called by the goroutine in
// ReadBatchLent, with the Conn's read lock held, and must not block.
type Lender interface {
	// Lend gives each msgs[i] whose Buf is nil a buffer (with GRO active,
	// of GROBufferSize bytes at least).
	Lend(msgs []Message)
	// Return takes back the buffer of each msgs[i] whose Buf is not nil
	// and sets that Buf to nil.
	Return(msgs []Message)
}

// ReadBatchLent is ReadBatch for a reader that holds no buffers while it
// waits. Each time the socket may be readable it has l lend a buffer to
// every message without one, tries to read without blocking, and if
// there is nothing to read gives all the buffers back and waits in the
// runtime's poller. It returns when it has read, with msgs[:n] filled as
// by ReadBatch. Afterwards msgs (all of them, not only the first n) may
// hold lent buffers: the caller may read into them again (a busy socket
// keeps its buffers from one call to the next), and gives them back with
// l.Return when it stops reading. On an error, msgs hold no buffers.
//
// The generic net.PacketConn path cannot wait without a buffer: it lends
// one and blocks in ReadFrom with it.
func (c *Conn) ReadBatchLent(msgs []Message, l Lender) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var n int
	var err error
	switch {
	case c.closed.Load():
		err = c.opError("read", net.ErrClosed, netip.AddrPort{})
	case c.sys == nil:
		l.Lend(msgs[:1])
		n, err = c.readGeneric(&msgs[0])
	default:
		n, err = c.sys.read(c, msgs, l)
	}
	if err != nil {
		l.Return(msgs)
	}
	return n, err
}

// WriteBatch writes msgs in order and returns how many were written
// completely; it blocks until all are written or an error occurs. A
// Message with Segment > 0 is split into datagrams of Segment bytes (the
// last may be shorter): by the kernel with GSO, in chunks of at most
// MaxSegments datagrams and MaxPayload bytes, or here otherwise. On error
// the message at index n may have been sent in part (some of its
// datagrams).
func (c *Conn) WriteBatch(msgs []Message) (int, error) {
	if c.closed.Load() {
		return 0, c.opError("write", net.ErrClosed, netip.AddrPort{})
	}
	if c.sys == nil {
		return c.writeGeneric(msgs)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.sys.write(c, msgs)
}

// SplitSegments calls f with each datagram of a read Message, in order:
// Buf[:N] itself when Segment is 0 (or not less than N), otherwise
// consecutive slices of Segment bytes, the last possibly shorter. The
// slices alias Buf (their capacity is capped at their length); nothing is
// allocated or copied.
func SplitSegments(m Message, f func(seg []byte)) {
	b := m.Buf[:m.N]
	seg := m.Segment
	if seg <= 0 || seg >= len(b) {
		f(b[:len(b):len(b)])
		return
	}
	for len(b) > seg {
		f(b[:seg:seg])
		b = b[seg:]
	}
	f(b[:len(b):len(b)])
}

// readGeneric reads one datagram through the net.PacketConn interface.
func (c *Conn) readGeneric(m *Message) (int, error) {
	n, addr, err := c.pc.ReadFrom(m.Buf)
	if err != nil {
		return 0, c.opError("read", err, netip.AddrPort{})
	}
	m.N, m.Addr, m.Segment, m.Truncated = n, addrPortOf(addr), 0, false
	return 1, nil
}

// writeGeneric writes msgs one datagram at a time through the
// net.PacketConn interface.
func (c *Conn) writeGeneric(msgs []Message) (int, error) {
	for i := range msgs {
		m := &msgs[i]
		dst := net.UDPAddrFromAddrPort(m.Addr)
		b, seg := m.Buf, m.Segment
		for first := true; first || len(b) > 0; first = false {
			l := len(b)
			if seg > 0 && seg < l {
				l = seg
			}
			if _, err := c.pc.WriteTo(b[:l], dst); err != nil {
				return i, c.opError("write", err, m.Addr)
			}
			b = b[l:]
		}
	}
	return len(msgs), nil
}

// opError wraps err the way the net package does, unwrapping an
// *net.OpError from below (syscall.RawConn, a wrapped PacketConn) so the
// operation and addresses are this Conn's. Used on error paths only.
func (c *Conn) opError(op string, err error, dst netip.AddrPort) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	if c.closed.Load() && !errors.Is(err, net.ErrClosed) {
		err = net.ErrClosed
	}
	e := &net.OpError{Op: op, Net: "udp", Source: c.naddr, Err: err}
	if dst.IsValid() {
		e.Addr = net.UDPAddrFromAddrPort(dst)
	}
	return e
}

// errNoProgress guards the batch loops against a kernel that reports
// neither progress nor an error.
var errNoProgress = io.ErrNoProgress

// addrPortOf converts a net.Addr to a netip.AddrPort with IPv4-mapped
// addresses unmapped, so that session lookups see one form per peer.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case nil:
		return ap
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Packet is one received packet handed over in a pooled buffer of the
// transport that read it (compat.StreamTransport.ReadPackets): Buf lies in
// PB's bytes, and whoever ends up holding the packet puts PB back to Pool.
type Packet struct {
	Buf  []byte
	Addr netip.AddrPort
	PB   alignment.Buffer
	Pool *alignment.Pool
}
