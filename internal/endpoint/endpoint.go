// Package endpoint runs Haven sessions over one UDP socket: the socket
// layer and session table shared by the public dialer, listener and net
// packages (docs/ARCHITECTURE.md).
//
// One Endpoint owns one socket, one static identity and every session that
// uses them, found by the ephemeral value of their peer id (never by
// address, so a peer that changes address keeps its session). A single
// reader goroutine reads the socket, answers handshakes and hands each
// transport packet to its session. Sessions have no goroutine of their
// own: a process-wide pool of workers (runq.go) runs a session whenever
// something needs it (a packet, an application call, a timer), one worker
// at a time, so an idle session costs memory but no goroutine, and an
// idle endpoint costs its reader goroutine, which then holds no buffer.
package endpoint

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havenproto/haven/alignment"
	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/internal/udp"
	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// Config configures an Endpoint. Zero fields take defaults.
type Config struct {
	// PrivateKey is the static identity; zero makes a fresh one.
	PrivateKey wire.PrivateKey
	// Accept makes the endpoint answer handshakes (a listener).
	Accept bool
	// Session configures every session's engine.
	Session mux.Config
	// StreamCongestion is the TCP congestion control that the stream
	// (TCP) transports made for this endpoint ask the kernel for
	// (compat.StreamConfig.Congestion): the endpoint makes none itself;
	// its dialer (package dialer) does.
	StreamCongestion string
	// Limits and Handshake tune the cryptography (tests shorten them).
	// Handshake.Suite is the construction this endpoint's dials speak; a
	// listening endpoint answers each initiation in its own construction
	// (PROTOCOL.md §2.1), whatever Handshake.Suite says.
	Limits    secure.Limits
	Handshake secure.HandshakeConfig
	// Advertise lists other addresses a listening endpoint accepts packets
	// at; every session it answers advertises them to the dialer
	// (mux.Session.Advertise, PROTOCOL.md §6.6.2).
	Advertise []netip.AddrPort
	// Trace, if set, gives each new session a writer for its trace
	// (trace.go, docs/TRACE.md); a nil writer traces nothing. A writer
	// that is an io.Closer is closed when the session ends.
	Trace func(TraceInfo) io.Writer
	// DatagramFEC, with Repairs > 0, protects the datagrams this side
	// sends on every datagram channel with Repairs repair symbols per
	// group of up to Group datagrams (mux.Session.SetDatagramFEC), in the
	// sessions that have FEC; its dials propose FEC (mux.Config.FEC).
	DatagramFEC FEC
	// BackupPaths makes the further paths of sessions this endpoint dials
	// backups (mux.PathBackup: they carry data only while no other path
	// works) instead of sharing the load (PROTOCOL.md §6.6.5).
	BackupPaths bool
	// MaxSessions bounds the sessions (default 10,000); initiations beyond
	// it are dropped.
	MaxSessions int
	// InboxPackets bounds the packets queued for one session (default
	// 1,024); more are dropped, as a congested link would.
	InboxPackets int
	// Backlog bounds the channels waiting in each service's accept queue
	// (default 128); more are refused.
	Backlog int
	// DatagramBuffer bounds the bytes of received datagrams each datagram
	// service holds unread, all its channels together, like a UDP socket's
	// receive buffer (default DefaultDatagramBuffer). Each channel's ring
	// starts small and grows into it only while its reader is behind.
	// Sessions grant datagram credit for that much (Session.DatagramWindow).
	DatagramBuffer int
	// Workers is ignored: sessions are run by one process-wide pool of
	// workers, started on demand and bounded by a multiple of GOMAXPROCS
	// (runq.go).
	Workers int
	// Authorize, when not nil, decides which peer keys may have a session
	// with this endpoint, in both roles: an initiation from a refused key
	// is dropped silently (secure.ResponderConfig.Authorize), and a dial
	// to one fails with secure.ErrUnauthorized. It is asked again at every
	// rekey; CloseSessions ends the sessions of keys it stops admitting.
	Authorize func(peer wire.PublicKey) bool
}

func (c Config) withDefaults() Config {
	if c.MaxSessions == 0 {
		c.MaxSessions = 10000
	}
	if c.InboxPackets == 0 {
		c.InboxPackets = 1024
	}
	if c.Backlog == 0 {
		c.Backlog = 128
	}
	if c.DatagramBuffer == 0 {
		c.DatagramBuffer = DefaultDatagramBuffer
	}
	if c.Session.DatagramWindow == 0 {
		c.Session.DatagramWindow = c.DatagramBuffer
	}
	return c
}

// DefaultDatagramBuffer is the default Config.DatagramBuffer: 16 MiB, which
// holds a burst of a few hundred of the largest datagrams (or thousands of
// small ones) while the application is not reading, as a generously sized
// UDP socket buffer would.
const DefaultDatagramBuffer = 16 << 20

// FEC configures forward error correction on datagram channels
// (PROTOCOL.md §5.11): Repairs repair symbols (1 … 16) per group of up to
// Group datagrams (1 … 64).
type FEC struct{ Group, Repairs int }

// ReliableSendBuffer is a stream channel's default send buffer on the TCP
// fallback (mux.Config.SendBuffer; 1 MiB on UDP). Over TCP the bytes in
// flight include what waits in both ends' socket buffers, which Linux
// auto-tunes to a few MiB, so 1 MiB of unacknowledged data stalled a bulk
// transfer waiting for acknowledgements: 4 MiB took it from 1.1 to 1.4
// GB/s at MTU 1,500 (PERFORMANCE.md); more bought nothing.
const ReliableSendBuffer = 4 << 20

// Errors.
var (
	ErrClosed       = net.ErrClosed
	ErrTooMany      = errors.New("haven: too many sessions")
	ErrServiceTaken = errors.New("haven: service already has a listener")
)

// Endpoint is one identity's sockets (links.go) and the sessions on them.
// Safe for concurrent use.
type Endpoint struct {
	cfg Config
	// primary is the link the endpoint was made on; links are all of them,
	// primary first, a new array on every change (guarded by mu).
	primary link
	links   []*link
	first   [1]*link // links' first array, spared an allocation
	id      *secure.Identity
	resp    *secure.Responder // nil unless cfg.Accept
	// rekeyResp answers the peers' rekeys of this endpoint's sessions when
	// it has no resp (a dialer): made on the first such initiation, and
	// used by the reader goroutine only.
	rekeyResp *secure.Responder
	runq      runQueue // the gate onto the process-wide run workers
	// pool holds the copies of received packets between the reader and
	// the worker that applies them: the process-wide packetPool.
	pool *alignment.Pool

	// mu guards the tables below and closed; it is never held while a
	// session's own lock is taken, nor across I/O.
	mu       sync.Mutex
	sessions map[uint32]*Session         // by our ephemeral value
	byPeer   map[wire.PublicKey]*Session // a session to reuse per peer
	dials    map[uint32]*dial            // handshakes in progress, by our ephemeral value
	dialing  map[dialKey]*dial
	services map[string]*Service // made by the first Listen (a client has none)
	// hints counts the services by wire.ServiceHint of their names, for
	// the handshake's service hint (serves; made with services).
	hints map[uint32]int
	// dgServices are the datagram services, by name (made by the first).
	dgServices map[string]*DatagramService
	// cookies holds the newest cookie each responder sent this socket
	// (made by the first), so that the next dial to it carries mac2 from
	// the start (secure.Initiator.UseCookie; bounded by maxCookies).
	cookies    map[cookieKey]secure.Cookie
	cookiesNew int // cookies kept (received) over the endpoint's life
	closed     bool
	noAccept   atomic.Bool   // StopAccepting called: new handshakes go unanswered
	draining   chan struct{} // Drain called; closed when no session is left

	// admitMu orders new sessions against CloseSessions (admit.go): the
	// reader holds it shared from Authorize to the session's entry in the
	// table, so a session admitted under an old policy is in the table by
	// the time CloseSessions (which holds it exclusively) looks.
	admitMu sync.RWMutex

	done chan struct{}
	wg   sync.WaitGroup
}

// Listen opens an endpoint on a new UDP socket bound to laddr.
func Listen(network string, laddr netip.AddrPort, cfg Config) (*Endpoint, error) {
	conn, err := udp.Listen(network, laddr, udp.Options{})
	if err != nil {
		return nil, err
	}
	return newEndpoint(conn, cfg)
}

// New runs an endpoint on an existing socket (for example one passed by
// systemd), which it then owns: Close closes it. A *net.UDPConn gets
// batched I/O, GSO and GRO; any other net.PacketConn works one datagram
// at a time.
func New(pc net.PacketConn, cfg Config) (*Endpoint, error) {
	conn, err := udp.FromPacketConn(pc, udp.Options{})
	if err != nil {
		pc.Close() // New owns pc whatever happens
		return nil, err
	}
	return newEndpoint(conn, cfg)
}

// Transport is what an endpoint sends and receives its packets through:
// a UDP socket (*udp.Conn) or a stream transport (package compat's,
// PROTOCOL.md §8). The endpoint and its sessions do not care which
// (issue #13). Methods have *udp.Conn's meaning: WriteBatch is called by
// any worker, concurrently; Close unblocks the reader and the writers.
// A transport is read in one of two ways, by the link's one reader
// goroutine (recv.go): ReadBatchLent into buffers the endpoint lends
// (lentReader, *udp.Conn), which must hold none while it waits; or
// ReadPackets, whole packets in the transport's own pooled buffers
// (packetReader, compat.StreamTransport). A stream transport hands
// packets over in the datagram form (payload length field zero) and sets
// the field itself when it writes.
type Transport interface {
	WriteBatch(msgs []udp.Message) (int, error)
	LocalAddr() netip.AddrPort
	Caps() udp.Caps
	Close() error
}

// NewWithTransport runs an endpoint on t, which it then owns: Close
// closes it, and so does a failure here.
func NewWithTransport(t Transport, cfg Config) (*Endpoint, error) {
	return newEndpoint(t, cfg)
}

// newEndpoint runs an endpoint on conn; if it cannot, it closes conn.
func newEndpoint(conn Transport, cfg Config) (ep *Endpoint, err error) {
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	if !readable(conn) {
		return nil, errNoReader
	}
	cfg = cfg.withDefaults()
	if cfg.DatagramFEC.Repairs > 0 {
		cfg.Session.FEC = true // dials propose FEC scheme 1 (PROTOCOL.md §5.11)
	}
	if !conn.Caps().DontFragment && cfg.Session.MaxPacketSize == 0 {
		// Without the don't-fragment bit, a path MTU probe could arrive
		// as IP fragments and raise the packet size past the path's MTU
		// (PROTOCOL.md §6.5): stay at the base size unless asked.
		cfg.Session.MaxPacketSize = wire.DefaultPacketSize
	}
	// A configured key's Identity is shared with the process's other
	// endpoints of that key (a Dialer per dial derives it once); a fresh
	// key is this endpoint's alone.
	var id *secure.Identity
	if priv := cfg.PrivateKey; !priv.IsZero() {
		id, err = secure.SharedIdentity(priv)
	} else if priv, err = wire.GeneratePrivateKey(); err == nil {
		id, err = secure.NewIdentity(priv)
	}
	if err != nil {
		return nil, err
	}
	ep = &Endpoint{
		cfg:      cfg,
		primary:  link{t: conn, caps: conn.Caps()},
		id:       id,
		sessions: make(map[uint32]*Session),
		byPeer:   make(map[wire.PublicKey]*Session),
		dials:    make(map[uint32]*dial),
		dialing:  make(map[dialKey]*dial),
		done:     make(chan struct{}),
		pool:     packetPool,
	}
	if cfg.Authorize != nil {
		cfg.Handshake.Authorize = cfg.Authorize // dials and rekeys ask it too
	}
	if cfg.Accept {
		rc := secure.ResponderConfig{Params: cfg.Session.Params(), Authorize: cfg.Authorize, Serves: ep.serves}
		if ep.resp, err = secure.NewResponder(id, rc, nil); err != nil {
			return nil, err
		}
	}
	ep.first[0] = &ep.primary
	ep.links = ep.first[:]
	sessionq.retain() // released by Close
	ep.wg.Add(1)
	go ep.readPrimary() // a go statement with arguments would allocate
	return ep, nil
}

// readPrimary is readLoop on the endpoint's first link.
func (ep *Endpoint) readPrimary() { ep.readLoop(&ep.primary) }

// StopAccepting stops answering new handshakes (rekeys of existing
// sessions go on): a closed listener's sessions wind down in peace.
func (ep *Endpoint) StopAccepting() { ep.noAccept.Store(true) }

// Drain closes the endpoint gracefully: new handshakes go unanswered, every
// session drains (open channels finish, new ones are refused, then the
// session closes with NO_ERROR), and the socket closes when no session is
// left, or after timeout, when the rest close with code. It returns at
// once; one goroutine waits for the end (none if already closed).
func (ep *Endpoint) Drain(timeout time.Duration, code uint32, reason string) {
	ep.StopAccepting()
	ep.mu.Lock()
	if ep.closed || ep.draining != nil {
		ep.mu.Unlock()
		return
	}
	ep.draining = make(chan struct{})
	sessions := make([]*Session, 0, len(ep.sessions))
	for _, s := range ep.sessions {
		if s != nil {
			sessions = append(sessions, s)
		}
	}
	ep.checkDrainedLocked()
	drained := ep.draining
	ep.mu.Unlock()
	for _, s := range sessions {
		s.mu.Lock()
		confirmed := s.tr.Confirmed()
		if confirmed {
			s.m.Drain()
		}
		s.mu.Unlock()
		if !confirmed {
			// A session answered whose initiator never used it (a dial
			// that lost its race to another, or gave up) has nothing to
			// deliver, and could not even send its CLOSE (its keys are
			// not confirmed): it would hold the drain until its idle
			// timeout. It goes now.
			s.finish()
			continue
		}
		s.kick()
	}
	go func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-drained:
		case <-t.C:
		case <-ep.done:
			return
		}
		ep.Close(code, reason)
	}()
}

// checkDrainedLocked signals a draining endpoint once no session is left
// (ep.mu held).
func (ep *Endpoint) checkDrainedLocked() {
	if ep.draining == nil {
		return
	}
	for _, s := range ep.sessions {
		if s != nil {
			return
		}
	}
	select {
	case <-ep.draining:
	default:
		close(ep.draining)
	}
}

// PublicKey returns the endpoint's static public key.
func (ep *Endpoint) PublicKey() wire.PublicKey { return ep.id.PublicKey() }

// LocalAddr returns the address of the endpoint's first socket.
func (ep *Endpoint) LocalAddr() netip.AddrPort { return ep.primary.t.LocalAddr() }

// Caps reports the first socket's batching, GSO and GRO support.
func (ep *Endpoint) Caps() udp.Caps { return ep.primary.caps }

// Close closes every session abruptly with code, closes the socket and
// waits for the endpoint's goroutines to exit.
func (ep *Endpoint) Close(code uint32, reason string) error {
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		return nil
	}
	ep.closed = true
	sessions := make([]*Session, 0, len(ep.sessions))
	for _, s := range ep.sessions {
		if s != nil { // nil: an ephemeral value a dial has reserved
			sessions = append(sessions, s)
		}
	}
	for _, d := range ep.dials {
		d.fail(ErrClosed)
	}
	for _, svc := range ep.services {
		svc.shut()
	}
	for _, svc := range ep.dgServices {
		svc.shut()
	}
	ep.mu.Unlock()
	for _, s := range sessions {
		s.closeNow(code, reason) // sends the CLOSE synchronously
	}
	close(ep.done)
	ep.mu.Lock()
	links := ep.links
	ep.mu.Unlock()
	err := ep.primary.t.Close()
	for _, l := range links[1:] {
		l.t.Close()
	}
	ep.runq.stop() // no run of ours is left, nor crypto work of ours
	sessionq.release()
	ep.wg.Wait()
	for _, s := range sessions {
		s.release()
	}
	return err
}

// overloaded reports handshake load for cookies: handshakes still waiting
// for key confirmation beyond a tenth of the session limit.
func (ep *Endpoint) overloaded() bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return len(ep.sessions) >= ep.cfg.MaxSessions*9/10
}

// reserveEphemeral picks an unused non-zero ephemeral value and reserves
// it in the session table (as a nil entry); 0 when the table is full.
func (ep *Endpoint) reserveEphemeral() uint32 {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closed || len(ep.sessions)+len(ep.dials) >= ep.cfg.MaxSessions {
		return 0
	}
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0
		}
		v := binary.LittleEndian.Uint32(b[:])
		if _, used := ep.sessions[v]; v != 0 && !used && ep.dials[v] == nil {
			ep.sessions[v] = nil
			return v
		}
	}
}

func (ep *Endpoint) releaseEphemeral(v uint32) {
	ep.mu.Lock()
	if ep.sessions[v] == nil {
		delete(ep.sessions, v)
	}
	ep.mu.Unlock()
}

// cookieKey names a responder: its key and the address dialed.
type cookieKey struct {
	peer wire.PublicKey
	addr netip.AddrPort
}

// maxCookies bounds the cookies an endpoint keeps: one per responder it
// dialed recently, more than a client talks to at once.
const maxCookies = 256

// cookieFor returns the cookie kept for a responder.
func (ep *Endpoint) cookieFor(peer wire.PublicKey, addr netip.AddrPort) (secure.Cookie, bool) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	c, ok := ep.cookies[cookieKey{peer, addr}]
	return c, ok
}

// keepCookie keeps a responder's newest cookie; when the table is full an
// arbitrary entry makes room (cookies are cheap to get again).
func (ep *Endpoint) keepCookie(peer wire.PublicKey, addr netip.AddrPort, c secure.Cookie) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	k := cookieKey{peer, addr}
	if ep.cookies == nil {
		ep.cookies = make(map[cookieKey]secure.Cookie)
	}
	if _, ok := ep.cookies[k]; !ok && len(ep.cookies) >= maxCookies {
		for old := range ep.cookies {
			delete(ep.cookies, old)
			break
		}
	}
	ep.cookies[k] = c
	ep.cookiesNew++
}
