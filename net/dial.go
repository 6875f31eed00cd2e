package net

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/havenproto/haven/dialer"
	"github.com/havenproto/haven/internal/endpoint"
)

// Dialer dials Haven addresses. It keeps one socket and one session per
// remote peer: the first Dial to a peer runs the handshake, later ones
// open a new channel on the same session. The zero value is ready to use.
type Dialer struct {
	// Config tunes the sessions; its PrivateKey is the Dialer's identity.
	Config Config
	// Timeout bounds each Dial, handshake and channel open included. Zero
	// sets no limit of the Dialer's own: the handshake then gives up after
	// Config.HandshakeTimeout (default 60 s, retrying every few seconds
	// meanwhile), and the wait for the peer to accept the channel lasts as
	// long as the session (which ends after Config.IdleTimeout without a
	// packet). A context passed to DialContext bounds a dial as well.
	Timeout time.Duration
	// LocalAddr is the UDP address to bind ("ip:port"); zero picks one.
	LocalAddr netip.AddrPort
	// LocalAddrs are further local addresses (other interfaces, say
	// Wi-Fi and cellular): the Dialer binds a socket to each too, and
	// every session opens a path from each to its server (and to each
	// address the server advertises) and uses them together: data goes
	// on the path with the lowest round trip that has room, spilling over
	// to the others, and a path that goes dark hands its data to the
	// others within about two probe timeouts (docs/PROTOCOL.md §6.6).
	// With LocalAddr zero, the first of them is the main socket's
	// address.
	LocalAddrs []netip.AddrPort
	// BackupPaths makes the further paths backups: they carry this side's
	// data only while no other path works (MPTCP's backup mode; the
	// server's scheduler still uses every path).
	BackupPaths bool
	// Service is the service name channels are opened to (default "").
	Service string
	// Priority is the channels' priority, 0 most urgent (default 3).
	Priority uint8

	// once makes pool, the Dialer's sockets and sessions, on first use.
	once sync.Once
	pool *dialer.Pool
	// mu guards laddrs: the local address of each socket (one per UDP
	// network), shared by the Conns dialed from it.
	mu     sync.Mutex
	laddrs []epAddr
}

var defaultDialer Dialer

// Dial connects to address ("<public key>@<host>:<port>") on network
// "haven", "haven4" or "haven6", with the package's default Dialer.
// A new session starts over UDP; if the handshake has not completed
// within 300 ms (dialer.FallbackDelay) it is also tried over TCP at the
// same port number, where "haven" listeners accept it too, and the first
// to complete wins (Config.DisableTCP: UDP only). "haven+tcp",
// "haven4+tcp" and "haven6+tcp" use TCP alone (docs/PROTOCOL.md §8).
func Dial(network, address string) (net.Conn, error) {
	return defaultDialer.DialContext(context.Background(), network, address)
}

// DialContext is Dial with a context.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return defaultDialer.DialContext(ctx, network, address)
}

// Dial connects to address on network.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address on network: it finds or makes the
// session to the peer and opens a stream channel. The first channel to a
// service on a session returns once the peer has accepted it, so an
// unserved service fails here, with its name. A Dial that makes the
// session asks in its handshake whether the peer serves d.Service, and a
// "served" answer counts as that acceptance: a new session's first Dial
// takes one round trip (docs/PROTOCOL.md §7.2). Later ones to a service
// the peer has accepted on that session return at once, without the round
// trip (as quic-go's OpenStreamSync does); if the peer refuses one after
// all (the service closed meanwhile, its accept backlog full), the refusal
// shows on the first Read or Write, and the next Dial waits again.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := d.dial(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: opAddr(address), Err: err}
	}
	return conn, nil
}

func (d *Dialer) dial(ctx context.Context, network, address string) (*Conn, error) {
	// The Timeout bounds the dial as a deadline passed down, not as a
	// derived context: the handshake and the channel open wait on timers
	// of their own anyway, and a context with a timeout costs five
	// allocations a dial.
	var deadline time.Time
	if d.Timeout > 0 {
		deadline = time.Now().Add(d.Timeout)
	}
	raddr, err := resolveAddr(ctx, deadline, network, address)
	if err != nil {
		return nil, err
	}
	udp, stream, _ := transportOf(network)
	var s *endpoint.Session
	var ep *endpoint.Endpoint
	// A new session's handshake asks whether the peer serves d.Service, so
	// that this first stream need not wait for its ACCEPT (below).
	first := endpoint.FirstService{Name: d.Service, Ask: true}
	if stream {
		s, ep, err = d.sessions().SessionStream(ctx, deadline, raddr.Key, dialable(raddr.Addr), first)
	} else {
		s, ep, err = d.sessions().Session(ctx, deadline, udp, raddr.Key, dialable(raddr.Addr), first)
	}
	if err != nil {
		return nil, authorizeError(err, raddr.Key)
	}
	prio := d.Priority
	if prio == 0 {
		prio = 3
	}
	st, err := s.OpenStream(d.Service, prio)
	if err != nil {
		return nil, err
	}
	// The first channel to a service on a session waits for its ACCEPT, so
	// that a service nobody serves fails here, with its name; once the
	// peer has accepted one, or answered this dial's handshake that it
	// serves the service (PROTOCOL.md §7.2), later dials to that service
	// return at once (a refusal after all shows on the first Read or
	// Write).
	if !st.ServiceAccepted() {
		if err := st.WaitAcceptedUntil(ctx, deadline); err != nil {
			st.Close()
			return nil, err
		}
	}
	return newConn(st, d.localAddr(ep)), nil
}

// localAddr returns the Conns' local address on ep, made once per socket.
func (d *Dialer) localAddr(ep *endpoint.Endpoint) *Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.laddrs {
		if l.ep == ep {
			return l.addr
		}
	}
	a := &Addr{Key: ep.PublicKey(), Addr: ep.LocalAddr()}
	d.laddrs = append(d.laddrs, epAddr{ep, a})
	return a
}

// epAddr is a socket of the Dialer and its address.
type epAddr struct {
	ep   *endpoint.Endpoint
	addr *Addr
}

// sessions returns the Dialer's pool, making it on first use.
func (d *Dialer) sessions() *dialer.Pool {
	d.once.Do(func() {
		laddr, backups := d.LocalAddr, d.LocalAddrs
		if !laddr.IsValid() && len(backups) > 0 {
			laddr, backups = backups[0], backups[1:]
		}
		cfg := d.Config.endpoint(false)
		cfg.BackupPaths = d.BackupPaths
		d.pool = dialer.New(cfg, laddr)
		d.pool.NoFallback = d.Config.DisableTCP
		d.pool.Backups = backups
	})
	return d.pool
}

// Close closes the Dialer's sockets and every session on them.
func (d *Dialer) Close() error { return d.sessions().Close() }

// opAddr is a net.Addr for an address that may not parse.
type opAddr string

func (a opAddr) Network() string { return "haven" }
func (a opAddr) String() string  { return string(a) }
