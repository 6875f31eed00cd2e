package compat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/havenproto/haven/alignment"
	"github.com/havenproto/haven/internal/udp"
	"github.com/havenproto/haven/wire"
)

// Bounds of a stream transport (issue #13: hostile TCP input is bounded).
const (
	// MaxConnsPerSource bounds the connections one source IP address may
	// hold open to a listening transport at once; more are closed at once,
	// without a byte written.
	MaxConnsPerSource = 16
	// MaxConns bounds a listening transport's connections in all.
	MaxConns = 4096
	// inQueue bounds the packets read from all connections and not yet
	// taken by the endpoint; a full queue stops the connections' readers,
	// which is TCP's back-pressure on their senders.
	inQueue = 256
	// outQueue bounds the packets waiting for one connection's writer; a
	// packet beyond it is dropped, as a full UDP socket buffer drops one,
	// so one slow peer never holds up the endpoint's other sessions.
	outQueue = 512
)

// ErrStreamClosed is returned by a closed StreamTransport's methods; it
// is net.ErrClosed.
var ErrStreamClosed = net.ErrClosed

// StreamTransport carries an endpoint's packets over TCP connections
// instead of a UDP socket, framed as docs/PROTOCOL.md §8 says. It
// implements endpoint.Transport: a listening one (ListenStream) accepts
// connections, one per peer socket, and addresses each by its remote
// address, as a UDP socket addresses datagrams; a dialing one (DialStream)
// holds one connection and sends everything there.
//
// Goroutines: one accept loop (listening), and a reader and a writer per
// connection. Received packets wait in one bounded queue for the
// endpoint's reader; packets to send wait in a bounded queue per
// connection, so WriteBatch never blocks on a slow peer.
type StreamTransport struct {
	ln         net.Listener // nil for a dialing transport
	local      netip.AddrPort
	maxPacket  int
	congestion string // StreamConfig.Congestion, for accepted connections

	in   chan inbound
	done chan struct{}
	wg   sync.WaitGroup

	// mu guards conns, perSource, dialed and closed.
	mu        sync.Mutex
	conns     map[netip.AddrPort]*streamConn
	perSource map[netip.Addr]int
	dialed    *streamConn // the dialing transport's one connection
	closed    bool
	// ended is closed when a dialing transport's connection ends, or the
	// transport closes (Done).
	ended chan struct{}
}

// inbound is one received packet, in a buffer of streamPool.
type inbound struct {
	pb   alignment.Buffer
	n    int
	from netip.AddrPort
}

// streamPool holds the copies of packets between a connection's reader and
// the endpoint's reader, and between WriteBatch and a connection's writer:
// a packet queued owns its buffer until it is copied out or written. It
// keeps at most 1,024 small and 64 large buffers (about 6.5 MiB) free.
var streamPool = func() *alignment.Pool {
	p, err := alignment.NewPool(alignment.Class{Size: 2 << 10, MaxFree: 1024},
		alignment.Class{Size: 72 << 10, MaxFree: 64})
	if err != nil {
		panic(err)
	}
	return p
}()

// pooled copies p into a buffer of streamPool; ok is false for a packet
// larger than the pool's largest class (not one of ours).
func pooled(p []byte) (alignment.Buffer, bool) {
	b, ok := streamPool.Get(len(p))
	if ok {
		copy(b.Bytes(), p)
	}
	return b, ok
}

// streamConn is one TCP connection of a transport.
type streamConn struct {
	c    net.Conn
	addr netip.AddrPort
	out  chan outbound
	once sync.Once
}

// outbound is one packet queued for a connection's writer.
type outbound struct {
	pb alignment.Buffer
	n  int
}

// StreamConfig configures a stream transport (ListenStream, DialStream).
type StreamConfig struct {
	// MaxPacket bounds the packets it carries (0: the largest).
	MaxPacket int
	// Congestion names the TCP congestion control its connections ask the
	// kernel for (TCP_CONGESTION; Linux only): "" leaves the host's
	// choice. Where the kernel refuses (the algorithm is not available, or
	// an unprivileged process asks for one outside
	// net.ipv4.tcp_allowed_congestion_control), the host's choice stays.
	// docs/PROTOCOL.md §8.1 says why Haven asks.
	Congestion string
}

// ListenStream runs a listening stream transport on ln, which it owns
// from then on.
func ListenStream(ln net.Listener, cfg StreamConfig) (*StreamTransport, error) {
	local, err := addrPortOf(ln.Addr())
	if err != nil {
		ln.Close()
		return nil, err
	}
	t := newStream(local, cfg)
	t.ln = ln
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// DialStream connects a dialing stream transport to addr over TCP, from
// laddr when it is valid.
func DialStream(ctx context.Context, laddr, addr netip.AddrPort, cfg StreamConfig) (*StreamTransport, error) {
	var d net.Dialer
	if laddr.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(laddr)
	}
	if cfg.Congestion != "" {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			setCongestion(rc, cfg.Congestion) // refused: the host's choice stays
			return nil
		}
	}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	local, err := addrPortOf(c.LocalAddr())
	if err != nil {
		c.Close()
		return nil, err
	}
	t := newStream(local, cfg)
	sc := t.add(c, addr)
	t.mu.Lock()
	t.dialed = sc
	t.mu.Unlock()
	return t, nil
}

func newStream(local netip.AddrPort, cfg StreamConfig) *StreamTransport {
	maxPacket := cfg.MaxPacket
	if maxPacket < wire.MinPacketSize || maxPacket > wire.MaxPacketSize {
		maxPacket = wire.MaxPacketSize
	}
	return &StreamTransport{local: local, maxPacket: maxPacket, congestion: cfg.Congestion, in: make(chan inbound, inQueue),
		done: make(chan struct{}), ended: make(chan struct{}), conns: make(map[netip.AddrPort]*streamConn),
		perSource: make(map[netip.Addr]int)}
}

func addrPortOf(a net.Addr) (netip.AddrPort, error) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, errors.New("compat: not a TCP address: " + a.String())
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// acceptLoop accepts connections until the listener closes, and closes
// at once those over the per-source or total bounds.
func (t *StreamTransport) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		addr, err := addrPortOf(c.RemoteAddr())
		t.mu.Lock()
		ok := err == nil && !t.closed && len(t.conns) < MaxConns && t.perSource[addr.Addr()] < MaxConnsPerSource
		t.mu.Unlock()
		if !ok {
			c.Close()
			continue
		}
		if rc := rawConn(c); rc != nil && t.congestion != "" {
			setCongestion(rc, t.congestion) // refused: the host's choice stays
		}
		t.add(c, addr)
	}
}

// add registers c and starts its reader and writer.
func (t *StreamTransport) add(c net.Conn, addr netip.AddrPort) *streamConn {
	sc := &streamConn{c: c, addr: addr, out: make(chan outbound, outQueue)}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.Close()
		return sc
	}
	if old := t.conns[addr]; old != nil {
		t.dropLocked(old)
	}
	t.conns[addr] = sc
	t.perSource[addr.Addr()]++
	t.wg.Add(2)
	t.mu.Unlock()
	go t.readLoop(sc)
	go t.writeLoop(sc)
	return sc
}

// drop closes sc and forgets it.
func (t *StreamTransport) drop(sc *streamConn) {
	t.mu.Lock()
	t.dropLocked(sc)
	t.mu.Unlock()
}

func (t *StreamTransport) dropLocked(sc *streamConn) {
	t.endLocked(sc, true)
}

// closeWait bounds how long Close waits for a connection's queued packets
// (the sessions' CLOSE messages among them) to be written.
const closeWait = time.Second

// endLocked ends sc: at once (now), or after its writer has written what
// is queued, within closeWait (Close: the peer should get the CLOSE its
// session sent last, as over UDP, where it leaves before the socket
// closes). Either way sc is forgotten at once.
func (t *StreamTransport) endLocked(sc *streamConn, now bool) {
	sc.once.Do(func() {
		if now {
			sc.c.Close()
		} else {
			sc.c.SetWriteDeadline(time.Now().Add(closeWait))
		}
		close(sc.out) // the writer writes what is queued, then closes sc.c
		if t.conns[sc.addr] == sc {
			delete(t.conns, sc.addr)
		}
		if t.dialed == sc {
			t.dialed = nil // WriteBatch drops what it would have queued
			close(t.ended)
		}
		if t.perSource[sc.addr.Addr()]--; t.perSource[sc.addr.Addr()] <= 0 {
			delete(t.perSource, sc.addr.Addr())
		}
	})
}

// readLoop reads sc's packets into the inbound queue, each straight into
// a buffer of streamPool: the first within FirstPacketTimeout, any
// malformed one ends the connection without a byte written back.
func (t *StreamTransport) readLoop(sc *streamConn) {
	defer t.wg.Done()
	defer t.drop(sc)
	r := NewReader(sc.c, t.maxPacket)
	var pb alignment.Buffer // the buffer the packet being read goes to
	dst := func(n int) []byte {
		b, ok := streamPool.Get(n)
		if !ok {
			return nil
		}
		pb = b
		return b.Bytes()[:n]
	}
	defer func() { streamPool.Put(pb) }() // a packet cut short
	var p []byte
	var err error
	if t.ln != nil {
		p, err = ReadFirstPacket(sc.c, r, dst) // an accepted connection proves itself first
	} else {
		p, err = r.ReadPacketTo(dst)
	}
	for err == nil {
		wire.PutLength(p, 0) // the datagram form (Transport)
		select {
		case t.in <- inbound{pb, len(p), sc.addr}:
			pb = alignment.Buffer{}
		case <-t.done:
			return
		}
		p, err = r.ReadPacketTo(dst)
	}
}

// writeLoop writes sc's queued packets, several per system call when
// they queue up.
func (t *StreamTransport) writeLoop(sc *streamConn) {
	defer t.wg.Done()
	var queued []outbound
	var batch [][]byte
	var scratch net.Buffers
	for o := range sc.out {
		queued = append(queued[:0], o)
	more:
		for len(queued) < 64 {
			select {
			case q, ok := <-sc.out:
				if !ok {
					break more
				}
				queued = append(queued, q)
			default:
				break more
			}
		}
		batch = batch[:0]
		for _, q := range queued {
			batch = append(batch, q.pb.Bytes()[:q.n])
		}
		var err error
		scratch, err = WritePackets(sc.c, batch, scratch)
		for i, q := range queued {
			streamPool.Put(q.pb)
			queued[i] = outbound{}
		}
		if err != nil {
			t.drop(sc)
			for o := range sc.out { // drain until drop's close
				streamPool.Put(o.pb)
			}
			return
		}
	}
	sc.c.Close() // ended gracefully (endLocked): everything queued is written
}

// ReadPackets waits for received packets and hands up to len(pkts) of
// them over, in the datagram form, each in the streamPool buffer it was
// read into: the caller puts each Packet's PB back to its Pool when done
// (endpoint.Transport's packet-reading form, which spares a copy).
func (t *StreamTransport) ReadPackets(pkts []udp.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	var in inbound
	select {
	case in = <-t.in:
	case <-t.done:
		return 0, ErrStreamClosed
	}
	n := 0
	for {
		pkts[n] = udp.Packet{Buf: in.pb.Bytes()[:in.n], Addr: in.from, PB: in.pb, Pool: streamPool}
		n++
		if n == len(pkts) {
			return n, nil
		}
		select {
		case in = <-t.in:
		default:
			return n, nil
		}
	}
}

// WriteBatch queues each message's packets (a segmented message's each
// datagram) for the connection of its address; a dialing transport's one
// connection takes them all. It never blocks: a packet for an unknown
// address or a full queue is dropped, as a UDP socket drops one.
func (t *StreamTransport) WriteBatch(msgs []udp.Message) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, ErrStreamClosed
	}
	for _, m := range msgs {
		sc := t.dialed
		if t.ln != nil {
			sc = t.conns[m.Addr]
		}
		if sc == nil {
			continue
		}
		seg := m.Segment
		if seg <= 0 {
			seg = len(m.Buf)
		}
		for off := 0; off < len(m.Buf); off += seg {
			p := m.Buf[off:min(off+seg, len(m.Buf))]
			pb, ok := pooled(p)
			if !ok {
				continue
			}
			select {
			case sc.out <- outbound{pb, len(p)}:
			default: // full: dropped
				streamPool.Put(pb)
			}
		}
	}
	return len(msgs), nil
}

// Connected reports whether a dialing transport's connection is still up
// (a listening transport: whether it is open).
func (t *StreamTransport) Connected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.closed && (t.ln != nil || t.dialed != nil)
}

// Congestion returns the TCP congestion control of the connection to
// addr (of the dialing transport's one connection, whatever addr), as the
// kernel reports it: StreamConfig.Congestion where it was granted, the
// host's default where not; "" when there is no such connection or the
// system does not say (not Linux).
func (t *StreamTransport) Congestion(addr netip.AddrPort) string {
	t.mu.Lock()
	sc := t.dialed
	if sc == nil {
		sc = t.conns[addr]
	}
	t.mu.Unlock()
	if sc == nil {
		return ""
	}
	rc := rawConn(sc.c)
	if rc == nil {
		return ""
	}
	name, err := congestionOf(rc)
	if err != nil {
		return ""
	}
	return name
}

// rawConn returns c's socket for setsockopt and getsockopt, or nil when c
// has none (a net.Conn that is not a socket).
func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Ended returns a channel closed when a dialing transport's connection
// ends, by either side or a failure, or the transport closes (a listening
// transport's, only then).
func (t *StreamTransport) Ended() <-chan struct{} { return t.ended }

// LocalAddr returns the listener's or the connection's local address.
func (t *StreamTransport) LocalAddr() netip.AddrPort { return t.local }

// Caps describes a stream transport as the endpoint needs it: one packet
// at a time, and packets that arrive whole whatever their size (TCP
// segments them), so path MTU discovery may go up to the largest packet.
func (t *StreamTransport) Caps() udp.Caps {
	return udp.Caps{DontFragment: true, Reliable: true, BatchSize: 1}
}

// Close closes the listener and every connection and waits for the
// transport's goroutines.
func (t *StreamTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrStreamClosed
	}
	t.closed = true
	close(t.done)
	if t.ln != nil {
		t.ln.Close()
	}
	for _, sc := range t.conns {
		t.endLocked(sc, false)
	}
	if t.dialed != nil {
		t.endLocked(t.dialed, false)
	}
	select {
	case <-t.ended: // the connection ended first
	default:
		close(t.ended)
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}
