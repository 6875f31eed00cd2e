package endpoint

import (
	"net/netip"
	"time"

	"github.com/havenproto/haven/mux"
)

// Failover between the dialing side's local sockets (PROTOCOL.md §6.6.7):
// a session uses one path at a time and keeps the paths from the
// endpoint's other UDP sockets to the same peer address as backups. When
// the path in use has had two consecutive probe timeouts with data
// outstanding (mux.Session.PTOCount), the session moves to the next
// backup at once: it needs no validation from this side (the peer
// validates the new address as any other, PROTOCOL.md §6.4), and what was
// outstanding on the old path is sent again on the new one at once
// (mux.Session.AbandonPath).
//
// A side that only receives has nothing of its own to time out, so while
// it has backups it probes silence: after quietFirst without a packet it
// sends a PING, whose probe timeouts then tell a dark path, and the wait
// doubles after each such PING up to the keepalive interval; traffic
// arriving sooner than quietFirst apart sets it back.

// backups holds a session's backup paths, guarded by the session's mu.
type backups struct {
	paths []path
	// lastRecv is when the session last received an authenticated packet,
	// pinged when it last sent a silence PING, quiet how long a silence is
	// before the next.
	lastRecv, pinged time.Time
	quiet            time.Duration
	next             int // the next of paths to open (openNext)
}

// forget drops the paths over link l (gone; nil: none).
func (b *backups) forget(l *link) {
	if l == nil {
		return
	}
	k := 0
	for _, p := range b.paths {
		if p.l != l {
			b.paths[k] = p
			k++
		}
	}
	clear(b.paths[k:])
	b.paths = b.paths[:k]
}

// quietFirst is the first silence a session with backups probes with a
// PING: short enough that a read stalls well under a second when its path
// goes dark, long enough that a busy session never pings.
const quietFirst = 200 * time.Millisecond

// init gives a new session the backups of its endpoint: a session this
// side dialed over a datagram link gets a path from each other datagram
// link whose address family fits the peer's address.
func (b *backups) init(s *Session, now time.Time) {
	if !s.initiator || s.at.reliable() {
		return
	}
	b.lastRecv, b.quiet = now, quietFirst
	s.ep.mu.Lock()
	links := s.ep.links
	s.ep.mu.Unlock()
	for _, l := range links {
		if l != s.at.l && !l.caps.Reliable && fits(l.t.LocalAddr().Addr(), s.at.addr.Addr()) {
			b.paths = append(b.paths, path{l, s.at.addr}) // opened beside the first (openNext)
		}
	}
}

// learn adds, for each address the peer advertised (PROTOCOL.md §6.6.2),
// a backup path from each datagram link that fits it, up to
// mux.MaxAddresses paths in all; a path that is no longer advertised stays
// until the session ends (s.mu held).
func (b *backups) learn(s *Session) {
	if !s.initiator {
		return
	}
	s.ep.mu.Lock()
	links := s.ep.links
	s.ep.mu.Unlock()
	for _, addr := range s.m.PeerAddresses() {
		for _, l := range links {
			p := path{l, addr}
			if l.caps.Reliable || !fits(l.t.LocalAddr().Addr(), addr.Addr()) || p == s.at || b.has(p) ||
				len(b.paths)+1 >= mux.MaxAddresses {
				continue
			}
			if len(b.paths) == 0 {
				b.lastRecv, b.quiet = time.Now(), quietFirst // the silence probe starts (check)
			}
			b.paths = append(b.paths, p)
		}
	}
}

// has reports whether p is one of the backups.
func (b *backups) has(p path) bool {
	for _, q := range b.paths {
		if q == p {
			return true
		}
	}
	return false
}

// fits reports whether a socket bound to local can send to remote.
func fits(local, remote netip.Addr) bool {
	local = local.Unmap()
	return local.IsUnspecified() && local.Is6() || local.Is4() == remote.Unmap().Is4()
}

// received notes an authenticated packet (s.mu held).
func (b *backups) received(now time.Time) {
	if len(b.paths) == 0 {
		return
	}
	if now.Sub(b.lastRecv) < quietFirst && b.lastRecv.After(b.pinged) {
		// Two packets close together, not just the answer to a PING:
		// traffic flows, and a silence is news again.
		b.quiet = quietFirst
	}
	b.lastRecv = now
}

// deadline returns when check must run next for the silence probe (zero:
// never).
func (b *backups) deadline() time.Time {
	if len(b.paths) == 0 {
		return time.Time{}
	}
	return b.silentSince().Add(b.quiet)
}

// silentSince is when the current silence began: the last packet
// received, or the last silence PING if later.
func (b *backups) silentSince() time.Time {
	if b.pinged.After(b.lastRecv) {
		return b.pinged
	}
	return b.lastRecv
}

// check probes a silence and moves the session to its next backup when
// the path in use is suspect; called by the running worker with s.mu
// held.
func (b *backups) check(s *Session, now time.Time) {
	if len(b.paths) == 0 {
		return
	}
	if !now.Before(b.silentSince().Add(b.quiet)) && s.m.PTOCount() == 0 {
		s.m.Ping()
		b.pinged = now
		b.quiet = min(2*b.quiet, max(s.m.KeepAlive(), quietFirst))
	}
	// Two probe timeouts in a row on the path in use, and no other path
	// in the engine to take over (which it does by itself, PROTOCOL.md
	// §6.6.5). The move's AbandonPath (moveTo) sets the count back to 0,
	// so the next move takes two timeouts on the new path.
	if s.m.PTOCount() < 2 || s.holdsPaths() {
		return
	}
	next := b.paths[0]
	copy(b.paths, b.paths[1:])
	b.paths[len(b.paths)-1] = s.at
	s.candidate = path{}
	s.moveTo(next)
	s.m.Ping() // at once on the new path
}

// PathInfo describes one path of a session (Session.Paths).
type PathInfo struct {
	Local, Remote netip.AddrPort
	Stream        bool // over a stream (TCP) transport
	// State: "active" (carries data), "backup" (carries data only when
	// no active path works), "suspect" (two probe timeouts in a row: it
	// gets only probes until it delivers again), "validating" (being
	// opened or followed), or "standby" (known, not opened: a failover
	// target).
	State string
	mux.PathStats
}

// Paths returns the session's paths: the engine's, path 0 first, then a
// path being validated, then those waiting to be opened.
func (s *Session) Paths() []PathInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := func(p path, state string) PathInfo {
		return PathInfo{Local: p.l.t.LocalAddr(), Remote: p.addr, Stream: p.reliable(), State: state}
	}
	var out []PathInfo
	for id := 0; id < mux.MaxPaths; id++ {
		st, ok := s.m.PathStats(id)
		if !ok {
			break
		}
		if !st.Live {
			continue
		}
		pi := info(s.pathOf(id), "active")
		switch {
		case st.Suspect:
			pi.State = "suspect"
		case st.Mode == mux.PathBackup:
			pi.State = "backup"
		}
		pi.PathStats = st
		out = append(out, pi)
	}
	listed := func(p path) bool {
		return s.pathID(&p) >= 0 || p == s.candidate
	}
	if s.candidate.valid() {
		out = append(out, info(s.candidate, "validating"))
	}
	for _, p := range s.backups.paths {
		if !listed(p) {
			out = append(out, info(p, "standby"))
		}
	}
	return out
}

// holdsPaths reports whether the engine has a path besides path 0.
func (s *Session) holdsPaths() bool {
	if s.mp == nil {
		return false
	}
	for i := 1; i < mux.MaxPaths; i++ {
		if s.mp.paths[i].valid() {
			return true
		}
	}
	return false
}
