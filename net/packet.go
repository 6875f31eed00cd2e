package net

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// pendingPerPeer bounds the datagrams queued for a peer while its session
// is being set up. A writer finding the queue full waits for the session
// at most pendingWait; then its datagram is dropped and counted
// (PacketStats.Unsent), as a kernel drops what it queued for a neighbour
// that does not answer address resolution: WriteTo never waits long for a
// peer.
const (
	pendingPerPeer = 64
	pendingWait    = time.Second
)

// ListenPacket listens on network and address ("[host]:port") for
// datagrams from any peer, with a fresh identity. It is a secure UDP
// drop-in: WriteTo makes a session to a new peer on demand.
func ListenPacket(network, address string) (net.PacketConn, error) {
	var lc ListenConfig
	return lc.ListenPacket(context.Background(), network, address)
}

// ListenPacket listens for datagrams on network and address.
func (lc *ListenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	pc, err := lc.listenPacket(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: opAddr(address), Err: err}
	}
	return pc, nil
}

func (lc *ListenConfig) listenPacket(ctx context.Context, network, address string) (*PacketConn, error) {
	ep, err := lc.endpoint(ctx, network, address)
	if err != nil {
		return nil, err
	}
	svc, err := ep.ListenDatagrams(lc.Service)
	if err != nil {
		ep.Close(wire.CloseShuttingDown, "")
		return nil, err
	}
	return newPacketConn(ep, svc, &Addr{Key: ep.PublicKey(), Addr: ep.LocalAddr()}, true), nil
}

func newPacketConn(ep *endpoint.Endpoint, svc *endpoint.DatagramService, laddr *Addr, owned bool) *PacketConn {
	pc := &PacketConn{ep: ep, svc: svc, laddr: laddr, owned: owned,
		rd: endpoint.NewDeadline(), wd: endpoint.NewDeadline(), pending: map[PublicKey]*pendingPeer{}}
	pc.ctx, pc.cancel = context.WithCancel(context.Background())
	return pc
}

// PacketConn sends and receives datagrams to and from any peer: each
// ReadFrom returns one whole datagram (up to 65,507 bytes) and its sender's
// *Addr; WriteTo to a peer without a session starts one, queueing a few
// datagrams meanwhile.
type PacketConn struct {
	ep     *endpoint.Endpoint
	owned  bool // the socket is this PacketConn's (not a Host's)
	svc    *endpoint.DatagramService
	laddr  *Addr
	rd, wd *endpoint.Deadline
	ctx    context.Context
	cancel context.CancelFunc
	// mu guards pending and closed; wg counts the dial goroutines (one per
	// peer being set up, never one per datagram).
	mu      sync.Mutex
	pending map[PublicKey]*pendingPeer
	closed  bool
	wg      sync.WaitGroup
	unsent  atomic.Uint64 // datagrams dropped before any session took them
}

// pendingPeer is a peer whose session is being set up: up to
// pendingPerPeer datagrams (copies) wait in queue; ready is closed when
// the setup has finished, well or not, and queue was sent.
type pendingPeer struct {
	queue [][]byte
	ready chan struct{}
}

var _ net.PacketConn = (*PacketConn)(nil)

// ReadFrom reads the next datagram into p (truncating it if p is short,
// as UDP does) and returns its sender. The returned *Addr may be shared
// with earlier and later calls for the same peer and path (so that
// reading allocates nothing): it must not be modified.
func (pc *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, dc, from, err := pc.svc.Read(pc.ctx, pc.rd.Wait(), p)
	if err != nil {
		if errors.Is(err, endpoint.ErrClosed) || errors.Is(err, context.Canceled) {
			err = net.ErrClosed
		}
		return 0, nil, &net.OpError{Op: "read", Net: "haven", Source: pc.laddr, Err: err}
	}
	return min(n, len(p)), peerAddr(dc, from), nil
}

// peerAddr returns the *Addr of dc's peer at from, cached in the channel
// while the peer stays on one path.
func peerAddr(dc *endpoint.DatagramChannel, from netip.AddrPort) *Addr {
	if a, ok := dc.Label.Load().(*Addr); ok && a.Addr == from {
		return a
	}
	a := &Addr{Key: dc.Session().Peer(), Addr: from}
	dc.Label.Store(a)
	return a
}

// WriteTo sends p to addr (a *Addr, or anything whose String is a Haven
// address) as one datagram.
func (pc *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	n, err := pc.writeTo(p, addr)
	if err != nil {
		return n, &net.OpError{Op: "write", Net: "haven", Source: pc.laddr, Addr: addr, Err: err}
	}
	return n, nil
}

func (pc *PacketConn) writeTo(p []byte, addr net.Addr) (int, error) {
	pc.mu.Lock()
	closed := pc.closed
	pc.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	if len(p) > wire.MaxDatagramSize {
		return 0, mux.ErrDatagramSize
	}
	a, ok := addr.(*Addr)
	if !ok {
		if addr == nil {
			return 0, errMissingAddress
		}
		ra, err := resolveAddr(context.Background(), time.Time{}, "haven", addr.String())
		if err != nil {
			return 0, err
		}
		a = &ra
	}
	if pc.wd.Passed() {
		return 0, errDeadline()
	}
	for attempt := 0; attempt < 2; attempt++ {
		if dc := pc.svc.Channel(a.Key); dc != nil {
			if err := dc.Send(p, pc.wd.Wait()); err != nil {
				if errors.Is(err, endpoint.ErrClosed) {
					err = net.ErrClosed
				}
				return 0, err
			}
			return len(p), nil
		}
		// No session yet: this side's own policy is asked here, once per
		// setup and not on every datagram, and a refusal said at once.
		if !pc.ep.Admits(a.Key) {
			return 0, &AuthorizeError{Peer: a.Key}
		}
		pc.mu.Lock()
		pp := pc.pending[a.Key]
		if pp == nil {
			pp = &pendingPeer{ready: make(chan struct{})}
			pc.pending[a.Key] = pp
			pc.wg.Add(1)
			go pc.connect(a, pp)
		}
		if len(pp.queue) < pendingPerPeer {
			pp.queue = append(pp.queue, append([]byte(nil), p...))
			pc.mu.Unlock()
			return len(p), nil
		}
		pc.mu.Unlock()
		if attempt == 1 {
			break
		}
		// The queue for the session being set up is full: wait for the
		// session a little, as a full send queue makes WriteTo wait.
		t := time.NewTimer(pendingWait) // rare: only while a session is set up
		select {
		case <-pp.ready:
			t.Stop()
		case <-t.C:
			pc.unsent.Add(1)
			return len(p), nil
		case <-pc.wd.Wait():
			t.Stop()
			return 0, errDeadline()
		case <-pc.ctx.Done():
			t.Stop()
			return 0, net.ErrClosed
		}
	}
	pc.unsent.Add(1)
	return len(p), nil // still no session: lost, as on an unreachable UDP path
}

// connect sets up the session and datagram channel to a, then sends what
// was queued for it meanwhile (pp), and finally releases the writers
// waiting for it.
func (pc *PacketConn) connect(a *Addr, pp *pendingPeer) {
	defer pc.wg.Done()
	defer close(pp.ready)
	var dc *endpoint.DatagramChannel
	s, err := pc.ep.Session(pc.ctx, a.Key, dialable(a.Addr))
	if err == nil {
		if dc = pc.svc.Channel(a.Key); dc == nil {
			dc, err = s.OpenDatagram(pc.svc, 3)
		}
	}
	pc.mu.Lock()
	if pc.pending[a.Key] == pp {
		delete(pc.pending, a.Key)
	}
	queue := pp.queue
	pp.queue = nil
	pc.mu.Unlock()
	if err != nil {
		pc.unsent.Add(uint64(len(queue)))
		return // the datagrams are lost, as on an unreachable UDP path
	}
	for i, q := range queue {
		if dc.Send(q, pc.ctx.Done()) != nil {
			pc.unsent.Add(uint64(len(queue) - i))
			return
		}
	}
}

// PacketStats counts the datagrams of a PacketConn, over the sessions its
// channels belong to (a session's other datagram channels included).
type PacketStats struct {
	Sent, Received uint64
	// Unsent counts datagrams WriteTo accepted and dropped before the
	// network, as UDP drops them: the peer's application held a full
	// receive buffer unread (no datagram credit), or no session to the
	// peer could be made (in time).
	Unsent uint64
	// Dropped counts datagrams received and dropped: the receive buffer
	// was full.
	Dropped uint64
	// Recovered counts the datagrams of Received that forward error
	// correction recovered (Config.DatagramFEC); Repairs the repair
	// symbols sent.
	Recovered, Repairs uint64
}

// Stats returns the PacketConn's datagram counters, summed over its live
// sessions.
func (pc *PacketConn) Stats() PacketStats {
	st := PacketStats{Unsent: pc.unsent.Load()}
	pc.svc.EachChannel(func(dc *endpoint.DatagramChannel) {
		s := dc.Session().Stats()
		st.Sent += s.DatagramsSent
		st.Received += s.DatagramsReceived
		st.Unsent += s.DatagramsUnsent
		st.Dropped += s.DatagramsDropped
		f := dc.Session().FECStats()
		st.Recovered += f.DatagramsRecovered
		st.Repairs += f.RepairsSent
	})
	return st
}

// Close closes the socket and every session on it; blocked calls return.
func (pc *PacketConn) Close() error {
	pc.mu.Lock()
	if pc.closed {
		pc.mu.Unlock()
		return &net.OpError{Op: "close", Net: "haven", Source: pc.laddr, Err: net.ErrClosed}
	}
	pc.closed = true
	pc.mu.Unlock()
	pc.cancel()
	pc.svc.Close()
	pc.wg.Wait()
	if pc.owned {
		pc.ep.Close(wire.CloseNormal, "closed")
	}
	return nil
}

// LocalAddr returns "<public key>@<ip>:<port>", which peers can WriteTo.
func (pc *PacketConn) LocalAddr() net.Addr { return pc.laddr }

func (pc *PacketConn) SetDeadline(t time.Time) error {
	pc.rd.Set(t)
	pc.wd.Set(t)
	return nil
}
func (pc *PacketConn) SetReadDeadline(t time.Time) error  { pc.rd.Set(t); return nil }
func (pc *PacketConn) SetWriteDeadline(t time.Time) error { pc.wd.Set(t); return nil }
