package endpoint

import (
	"crypto/rand"
	"net/netip"
	"time"

	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/internal/udp"
	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// An endpoint's links are the transports it sends and receives through:
// the one it was made on (a UDP socket, or a TCP listener or connection
// for "haven+tcp"), and any added with AddTransport, such as the TCP
// fallback beside a UDP socket (issue #13). Sessions live in the
// endpoint, not in a link: a session's path names a link and the peer's
// address on it, and moves from link to link as any path change does
// (PROTOCOL.md §8.2), so a session that fell back to TCP can return to
// UDP. Each link has a reader goroutine of its own.

// link is one transport of an endpoint.
type link struct {
	t    Transport
	caps udp.Caps
	// reader is the link's read loop's scratch, kept here so that a new
	// socket allocates none; only that loop touches it.
	reader struct {
		msgs [readBatch]udp.Message
		bufs readBufs
		out  [wire.InitPacketLen]byte // handshake replies
	}
}

// path is where a session's packets go: a link, and the peer's address on
// it. The zero path is no path.
type path struct {
	l    *link
	addr netip.AddrPort
}

// congestionReporter is a transport that knows the congestion control of
// its connection to an address (compat.StreamTransport).
type congestionReporter interface {
	Congestion(addr netip.AddrPort) string
}

// CarrierCongestion returns the TCP congestion control of the connection
// the session's path runs on (PROTOCOL.md §8.1), or "" over UDP.
func (s *Session) CarrierCongestion() string {
	s.mu.Lock()
	p := s.at
	s.mu.Unlock()
	if !p.valid() {
		return ""
	}
	if r, ok := p.l.t.(congestionReporter); ok {
		return r.Congestion(p.addr)
	}
	return ""
}

// valid reports whether p is a path.
func (p path) valid() bool { return p.l != nil }

// reliable reports whether p's link is a reliable carrier (TCP).
func (p path) reliable() bool { return p.l != nil && p.l.caps.Reliable }

// Link is a transport added to an endpoint (AddTransport).
type Link struct {
	ep *Endpoint
	l  *link
}

// AddTransport runs t beside the endpoint's first transport, which it then
// owns: the endpoint reads it and its sessions may take paths over it
// (SessionVia dials over it). Closing the endpoint, or the Link, closes t.
func (ep *Endpoint) AddTransport(t Transport) (*Link, error) {
	if !readable(t) {
		t.Close()
		return nil, errNoReader
	}
	l := &link{t: t, caps: t.Caps()}
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		t.Close()
		return nil, ErrClosed
	}
	ep.links = append(ep.links[:len(ep.links):len(ep.links)], l) // a new array: readers of the old keep it
	ep.wg.Add(1)
	ep.mu.Unlock()
	go ep.readLoop(l)
	return &Link{ep: ep, l: l}, nil
}

// Close removes the link from its endpoint and closes its transport.
// Sessions whose path is on it lose that path: their packets go nowhere
// until the path changes, as a session's do when its network goes away.
func (k *Link) Close() error {
	ep := k.ep
	ep.mu.Lock()
	for i, l := range ep.links {
		if l == k.l {
			links := make([]*link, 0, len(ep.links)-1)
			ep.links = append(append(links, ep.links[:i]...), ep.links[i+1:]...)
			break
		}
	}
	ep.mu.Unlock()
	// The sessions' further paths over the link go with it (multipath.go):
	// what they had in flight is sent again on the others.
	for _, s := range ep.liveSessions() {
		s.mu.Lock()
		s.retirePaths(time.Now(), k.l)
		s.mu.Unlock()
		s.kick()
	}
	return k.l.t.Close()
}

// MoveSessions starts moving every session whose path is on from to the
// same peer address on to, as a path change this side makes (PROTOCOL.md
// §8.2): a PATH_CHALLENGE over to, and the move once it is answered. A
// dialer calls it when the TCP connection of from broke and to is a new
// one to the same server. It returns how many sessions it started moving.
func (ep *Endpoint) MoveSessions(from, to *Link) int {
	n := 0
	for _, s := range ep.liveSessions() {
		s.mu.Lock()
		move := s.at.l == from.l
		if move {
			s.startValidation(path{to.l, s.at.addr}) // its challenge goes over to (route)
		}
		s.mu.Unlock()
		if move {
			s.kick()
			n++
		}
	}
	return n
}

// InUse reports whether a session of the endpoint has its path, or a path
// being validated, on the link.
func (k *Link) InUse() bool {
	for _, s := range k.ep.liveSessions() {
		s.mu.Lock()
		on := s.at.l == k.l || s.candidate.l == k.l
		s.mu.Unlock()
		if on {
			return true
		}
	}
	return false
}

// liveSessions returns the endpoint's sessions that are not ending, a
// fresh slice taken under ep.mu (their own locks are taken after it).
func (ep *Endpoint) liveSessions() []*Session {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	all := make([]*Session, 0, len(ep.sessions))
	for _, s := range ep.sessions {
		if s != nil && !s.closing() {
			all = append(all, s)
		}
	}
	return all
}

// primaryPath returns the path to addr on the endpoint's first link.
func (ep *Endpoint) primaryPath(addr netip.AddrPort) path {
	return path{l: &ep.primary, addr: addr}
}

// sessionConfig returns the engine configuration of a session whose path
// is on l: over a reliable carrier, probe timeouts resend no data
// (mux.Config.ReliableCarrier) and streams keep more in flight
// (ReliableSendBuffer).
func (ep *Endpoint) sessionConfig(l *link) mux.Config {
	cfg := ep.cfg.Session
	if l.caps.Reliable {
		cfg.ReliableCarrier = true // the TCP fallback (PROTOCOL.md §8.1)
		if cfg.SendBuffer == 0 {
			cfg.SendBuffer = ReliableSendBuffer
		}
	}
	return cfg
}

// writeTo sends one packet on p (a handshake reply; sessions batch theirs).
func (ep *Endpoint) writeTo(pkt []byte, p path) {
	msgs := [1]udp.Message{{Buf: pkt, Addr: p.addr}}
	p.l.t.WriteBatch(msgs[:])
}

// AddSocket opens a UDP socket on network bound to laddr and adds it as a
// link (AddTransport): a dialer's second local address, whose paths its
// sessions keep as backups (failover.go).
func (ep *Endpoint) AddSocket(network string, laddr netip.AddrPort) (*Link, error) {
	conn, err := udp.Listen(network, laddr, udp.Options{})
	if err != nil {
		return nil, err
	}
	return ep.AddTransport(conn)
}

// Sessions returns the endpoint's live sessions (haven show).
func (ep *Endpoint) Sessions() []*Session { return ep.liveSessions() }

// startValidation starts validating a new path for the peer.
func (s *Session) startValidation(p path) {
	s.candidate = p
	s.amp = secure.AntiAmplification{Factor: secure.MigrationAmplification}
	rand.Read(s.challenge[:])
	s.m.SendPathChallenge(s.challenge)
}

// mayFollow reports whether the session may validate p, the path of the
// peer's newest packet, and move there: always on the same link (a NAT
// rebinding, a new address), and onto a datagram link from any; but never
// from one link onto another that is a reliable carrier. A peer that
// returns from the TCP fallback to UDP (probe.go) still sends on TCP for a
// moment, and those packets must not pull the session back.
func (s *Session) mayFollow(p path) bool {
	return p.l == s.at.l || !p.reliable()
}

// moveTo makes p, a validated path (or a backup of ours, failover.go),
// the session's path. A move to another link tells the engine of its
// carrier (mux.Session.SetCarrier): reliable or not, and the packet size
// to start again from.
func (s *Session) moveTo(p path) {
	old := s.at
	s.at, s.candidate = p, path{}
	s.moves++
	if p.l != old.l {
		s.m.SetCarrier(p.reliable(), s.ep.sessionConfig(p.l).MaxPacketSize)
		s.onStream.Store(p.reliable())
	}
	if !old.reliable() {
		// What is in flight on a datagram path left behind is as good as
		// lost (it went dark, or a NAT rebinding moved the peer): send it
		// again now rather than after the old path's timeouts. A TCP
		// connection left behind still delivers what it holds.
		s.m.AbandonPath(0)
	}
	s.probe.moved(s)
}

// route picks the path of a packet of n bytes that the engine meant for
// its path id. The packet that carries the PATH_CHALLENGE (challenged)
// goes to the path it validates, even beyond the amplification budget (it
// is one small packet per path change the peer caused, or per path of
// ours; sent on the old path, which may be dark, the validation would
// never end); the one that carries a PATH_RESPONSE (answered) goes back
// the way the challenge came (PROTOCOL.md §5.6). While the peer's move to
// a new path is validated, the rest goes there within its budget (the old
// path may be gone, as after a NAT rebinding); a path being added gets
// nothing else until it is.
//
// It writes the path into *to, a field of the run's packet, rather than
// returning it: a returned path went through a temporary that the
// compiler copied 16 bytes at a time from narrower stores, which stalls
// store-to-load forwarding (2 % of a bulk sender's CPU with the copy into
// the run).
func (s *Session) route(to *path, n, id int, challenged, answered bool) {
	switch {
	case challenged && s.candidate.valid():
		*to = s.candidate
	case answered && s.respondOn.valid():
		if s.respondOn == s.candidate {
			s.amp.Allow(n) // counted, and sent whatever it says: one per challenge
		}
		*to = s.respondOn
	case s.candidate.valid() && !(s.mp != nil && s.mp.adding) && s.amp.Allow(n):
		*to = s.candidate
	default:
		*to = *s.pathRef(id)
	}
}
