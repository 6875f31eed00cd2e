// Package dialer is the initiating side of Haven's socket layer: a Pool
// keeps one client socket (an endpoint) per UDP network and one session
// per remote peer on it, so every further dial to a peer is a new channel
// on the same session, with no new handshake. Package net's Dialer is a
// thin layer over a Pool.
package dialer

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/havenproto/haven/compat"
	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/wire"
)

// Pool finds or makes sessions to peers. The zero value is not usable;
// make one with New. Safe for concurrent use.
type Pool struct {
	cfg   endpoint.Config
	laddr netip.AddrPort
	// NoFallback keeps Session on UDP: no TCP attempt after
	// FallbackDelay. Set it before the first Session.
	NoFallback bool
	// Backups are further local addresses: each UDP endpoint of the pool
	// gets a socket on each that fits its network, and its sessions open
	// paths from them beside the first (PROTOCOL.md §6.6), and fail over
	// to them if the first goes dark before they are open. Set it before
	// the first Session.
	Backups []netip.AddrPort
	// mu guards eps (created on first use per network), fallbacks,
	// streams, racing and closed.
	mu     sync.Mutex
	eps    map[string]*endpoint.Endpoint
	closed bool
	// fallbacks holds the TCP connections Session fell back to, each a
	// link of the UDP endpoint of its network, by network and server
	// address: a session on one returns to UDP by itself when UDP passes
	// again (PROTOCOL.md §8.2).
	fallbacks map[linkKey]fallback
	quit      chan struct{} // made with fallbacks, closed by Close: ends keepUp's waits
	// streams holds an endpoint per remote address over the stream (TCP)
	// transport alone, for SessionStream ("haven+tcp"): one connection per
	// server, as a TCP client has.
	streams map[netip.AddrPort]*endpoint.Endpoint
	// racing holds the race (UDP, then TCP too) in progress per peer, so
	// that concurrent dials share one outcome: a TCP session that lost
	// is then seen by its race alone, which may close it.
	racing map[wire.PublicKey]*attempt
}

// streamConfig configures the pool's TCP connections.
func (p *Pool) streamConfig() compat.StreamConfig {
	return compat.StreamConfig{MaxPacket: p.cfg.Session.MaxPacketSize, Congestion: p.cfg.StreamCongestion}
}

// linkKey names a fallback connection: the UDP network of the endpoint it
// is a link of, and the server's address.
type linkKey struct {
	network string
	addr    netip.AddrPort
}

// fallback is a TCP connection the pool fell back to, as a link of a UDP
// endpoint.
type fallback struct {
	link *endpoint.Link
	t    *compat.StreamTransport
}

// attempt is a race in progress that other dials to the same peer wait on.
type attempt struct {
	done chan struct{} // closed when the race ends; then the fields are set
	s    *endpoint.Session
	err  error
	// abandoned says the race ended by its owner's context or deadline:
	// waiters run one of their own instead of taking that error.
	abandoned bool
}

// New makes a pool whose sockets bind laddr (zero: any address, a free
// port) and whose sessions use cfg.
func New(cfg endpoint.Config, laddr netip.AddrPort) *Pool {
	cfg.Accept = false
	return &Pool{cfg: cfg, laddr: laddr, eps: make(map[string]*endpoint.Endpoint),
		streams: make(map[netip.AddrPort]*endpoint.Endpoint)}
}

// Session returns the session to peer at addr over the UDP network
// ("udp", "udp4" or "udp6"): an existing one, or a new one after a
// handshake bounded by ctx, deadline (zero: none; it ends the dial with
// context.DeadlineExceeded) and the handshake timeout.
//
// The first dial on a network makes the socket and the static key object
// (one X25519 multiplication) before its handshake can start; the
// handshake's ephemeral key pair and its first DH are made meanwhile on a
// spare core (secure.EphemeralFor), or by the handshake itself if no core
// has started them by then. After a successful dial, the key pair and DH
// of the next dial to the same peer are made in the background
// (secure.PrepareFor), so that a process dialing a peer again, on a kept
// or a new socket, starts its handshake with both done.
func (p *Pool) Session(ctx context.Context, deadline time.Time, network string, peer wire.PublicKey,
	addr netip.AddrPort, first endpoint.FirstService) (*endpoint.Session, *endpoint.Endpoint, error) {
	p.mu.Lock()
	fresh := p.eps[network] == nil && !p.closed
	p.mu.Unlock()
	var ahead secure.EphemeralAhead
	if fresh { // no socket, so no session yet: this call will dial
		ahead = secure.EphemeralFor(peer, true)
	}
	ep, err := p.endpoint(network)
	if err != nil {
		ahead.Discard()
		return nil, nil, err
	}
	if s := ep.Live(peer); s != nil { // over UDP, or fallen back to TCP
		ahead.Discard()
		return s, ep, nil
	}
	if !fresh { // a kept socket: a prepared key pair, if one is ready
		ahead = secure.EphemeralFor(peer, false)
	}
	var s *endpoint.Session
	if p.NoFallback {
		s, err = ep.SessionAhead(ctx, deadline, peer, addr, ahead, first)
	} else {
		s, err = p.shareRace(ctx, deadline, network, ep, peer, addr, ahead, first)
	}
	if err == nil {
		secure.PrepareFor(peer) // for the next dial to peer (noise.Prepare)
	}
	return s, ep, err
}

// shareRace runs race for peer, or waits for the one another dial runs.
func (p *Pool) shareRace(ctx context.Context, deadline time.Time, network string, ep *endpoint.Endpoint,
	peer wire.PublicKey, addr netip.AddrPort, ahead secure.EphemeralAhead, first endpoint.FirstService) (*endpoint.Session, error) {
	var expired <-chan time.Time // the deadline, once this call waits
	for {
		p.mu.Lock()
		a := p.racing[peer]
		if a == nil {
			a = &attempt{done: make(chan struct{})}
			if p.racing == nil {
				p.racing = make(map[wire.PublicKey]*attempt) // by the first race: a pool that never races has none
			}
			p.racing[peer] = a
			p.mu.Unlock()
			a.s, a.err = p.race(ctx, deadline, network, ep, peer, addr, ahead, first)
			a.abandoned = errors.Is(a.err, context.Canceled) || errors.Is(a.err, context.DeadlineExceeded)
			p.mu.Lock()
			delete(p.racing, peer)
			p.mu.Unlock()
			close(a.done)
			return a.s, a.err
		}
		p.mu.Unlock()
		if expired == nil && !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-a.done:
			if !a.abandoned {
				ahead.Discard()
				return a.s, a.err
			}
			// The owner's limits ended it, not the peer: race anew.
		case <-expired:
			ahead.Discard()
			return nil, context.DeadlineExceeded
		case <-ctx.Done():
			ahead.Discard()
			return nil, ctx.Err()
		}
	}
}

// dropStream closes the pool's TCP endpoint ep to addr and forgets it.
func (p *Pool) dropStream(addr netip.AddrPort, ep *endpoint.Endpoint) {
	p.mu.Lock()
	if p.streams[addr] == ep {
		delete(p.streams, addr)
	}
	p.mu.Unlock()
	ep.Close(wire.CloseNormal, "")
}

// SessionStream is Session over the stream (TCP) transport of
// docs/PROTOCOL.md §8: the session to peer at addr on the pool's TCP
// connection to addr, made (connection, then handshake) when there is
// none or the last one ended.
func (p *Pool) SessionStream(ctx context.Context, deadline time.Time, peer wire.PublicKey,
	addr netip.AddrPort, first endpoint.FirstService) (*endpoint.Session, *endpoint.Endpoint, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil, endpoint.ErrClosed
	}
	ep := p.streams[addr]
	p.mu.Unlock()
	if ep != nil {
		if s, err := ep.SessionAhead(ctx, deadline, peer, addr, secure.EphemeralAhead{}, first); err == nil {
			return s, ep, nil
		}
		// The connection or its session ended: dial anew below.
		p.mu.Lock()
		if p.streams[addr] == ep {
			delete(p.streams, addr)
		}
		p.mu.Unlock()
		ep.Close(wire.CloseNormal, "")
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	t, err := compat.DialStream(ctx, p.laddr, addr, p.streamConfig())
	if err != nil {
		return nil, nil, err
	}
	ep, err = endpoint.NewWithTransport(t, p.cfg)
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ep.Close(wire.CloseNormal, "")
		return nil, nil, endpoint.ErrClosed
	}
	if old := p.streams[addr]; old != nil {
		// A concurrent dial won: use its connection.
		p.mu.Unlock()
		ep.Close(wire.CloseNormal, "")
		return p.SessionStream(ctx, deadline, peer, addr, first)
	}
	p.streams[addr] = ep
	p.mu.Unlock()
	s, err := ep.SessionAhead(ctx, deadline, peer, addr, secure.EphemeralAhead{}, first)
	if err != nil {
		p.dropStream(addr, ep) // no session: no connection kept
		return nil, nil, err
	}
	return s, ep, nil
}

// endpoint returns the pool's socket for network, creating it.
func (p *Pool) endpoint(network string) (*endpoint.Endpoint, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, endpoint.ErrClosed
	}
	if ep := p.eps[network]; ep != nil {
		return ep, nil
	}
	laddr := p.laddr
	if !laddr.IsValid() && network == "udp4" {
		laddr = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	ep, err := endpoint.Listen(network, laddr, p.cfg)
	if err != nil {
		return nil, err
	}
	for _, b := range p.Backups {
		if network == "udp4" && !b.Addr().Unmap().Is4() || network == "udp6" && b.Addr().Unmap().Is4() {
			continue // not of this network's family
		}
		if _, err := ep.AddSocket(network, b); err != nil {
			ep.Close(wire.CloseNormal, "")
			return nil, err
		}
	}
	p.eps[network] = ep
	return ep, nil
}

// Close closes the pool's sockets and every session on them; later calls
// to Session fail with net.ErrClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	eps, streams := p.eps, p.streams
	if p.quit != nil && !p.closed {
		close(p.quit)
	}
	p.eps, p.streams, p.closed = nil, nil, true
	p.mu.Unlock()
	for _, ep := range eps {
		ep.Close(wire.CloseNormal, "dialer closed")
	}
	for _, ep := range streams {
		ep.Close(wire.CloseNormal, "dialer closed")
	}
	return nil
}
