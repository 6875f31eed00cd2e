package endpoint

import (
	"crypto/rand"
	"time"

	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/mux"
)

// Several paths at once (PROTOCOL.md §6.6). The engine holds a recovery
// state per path and says which path each packet takes (mux.PollPath);
// here a session maps the engine's path ids to paths (a link and the
// peer's address on it), opens and validates them, and retires them.
//
// The dialing side opens paths: from each of its other datagram links to
// the address it dialed, and to each address the peer advertised
// (backups.init, backups.learn), one at a time, each with a PATH_CHALLENGE
// sent on it. The peer sees a new path whose packet carries a
// PATH_CHALLENGE while its own path is a datagram one, and validates it in
// turn instead of moving there (a NAT rebinding shows no challenge, and
// is followed as before, §6.4). Each side adds the path to its engine
// once its own challenge is answered on it, with the validation's round
// trip as the path's first RTT estimate. A path whose link goes away, or
// that receives nothing for the idle timeout, is retired.

// openTimeout bounds one attempt to validate a path this side opens; an
// unanswered path waits for the others' turns and is tried again.
const openTimeout = 2 * time.Second

// multipath is a session's paths beyond the engine's path 0 (s.at),
// allocated when the session gets a second path; guarded by s.mu.
type multipath struct {
	paths [mux.MaxPaths]path      // by engine path id; [0] unused (s.at)
	recv  [mux.MaxPaths]time.Time // when each last brought a packet
	// Opening paths (the dialing side): the candidate is being validated
	// to be added, not moved to (adding), since started.
	adding  bool
	started time.Time
}

// mpaths returns the session's multipath state, made on first use.
func (s *Session) mpaths() *multipath {
	if s.mp == nil {
		s.mp = new(multipath)
	}
	return s.mp
}

// pathID returns the engine's id of path p, or -1 when the session does
// not hold it.
func (s *Session) pathID(p *path) int {
	if *p == s.at {
		return 0
	}
	if s.mp != nil {
		for i := 1; i < mux.MaxPaths; i++ {
			if s.mp.paths[i] == *p {
				return i
			}
		}
	}
	return -1
}

// pathOf returns the path of engine id (s.at for 0, and for an id this
// side does not know, which cannot happen).
func (s *Session) pathOf(id int) path { return *s.pathRef(id) }

// pathRef is pathOf as a pointer to the session's own field, for a caller
// that copies it into place (route).
func (s *Session) pathRef(id int) *path {
	if id > 0 && s.mp != nil && s.mp.paths[id].valid() {
		return &s.mp.paths[id]
	}
	return &s.at
}

// mayAdd reports whether p, a new path the peer opens (or moved to while
// the session holds several), can be added beside the session's paths:
// both on datagram links. When the session holds MaxPaths already, the
// further path that has been silent longest is retired to make room
// (PROTOCOL.md §6.6.1).
func (s *Session) mayAdd(p path) bool {
	if p.reliable() || s.at.reliable() || s.candidate.valid() {
		return false
	}
	n, oldest := 1, 0
	if s.mp != nil {
		for i := 1; i < mux.MaxPaths; i++ {
			if s.mp.paths[i].valid() {
				n++
				if oldest == 0 || s.mp.recv[i].Before(s.mp.recv[oldest]) {
					oldest = i
				}
			}
		}
	}
	if n == mux.MaxPaths {
		s.m.RemovePath(oldest)
		s.mp.paths[oldest] = path{}
	}
	return true
}

// startAdding validates p to add it (a challenge of ours on it).
func (s *Session) startAdding(p path, now time.Time) {
	mp := s.mpaths()
	s.candidate, mp.adding, mp.started = p, true, now
	s.amp = secure.AntiAmplification{Factor: secure.MigrationAmplification}
	rand.Read(s.challenge[:])
	s.m.SendPathChallenge(s.challenge)
}

// added adds the validated candidate to the engine.
func (s *Session) added(now time.Time) {
	mp := s.mp
	p := s.candidate
	s.candidate, mp.adding = path{}, false
	mode := mux.PathActive
	if s.initiator && s.ep.cfg.BackupPaths {
		mode = mux.PathBackup
	}
	id, err := s.m.AddPath(mode, now.Sub(mp.started))
	if err != nil {
		return
	}
	mp.paths[id], mp.recv[id] = p, now
}

// openNext starts validating the next path this side wants to open (a
// backup, failover.go, the engine does not hold yet), if no validation is
// under way; one that took too long waits for the others' turns.
func (s *Session) openNext(now time.Time) {
	b := s.backups.paths
	if len(b) == 0 || s.at.reliable() {
		return
	}
	if s.candidate.valid() {
		if s.mp == nil || !s.mp.adding || now.Sub(s.mp.started) < openTimeout {
			return
		}
		s.candidate, s.mp.adding = path{}, false // tried again in its turn
	}
	for range b {
		p := b[s.backups.next%len(b)]
		s.backups.next++
		if s.pathID(&p) < 0 {
			s.startAdding(p, now)
			return
		}
	}
}

// retirePaths removes the engine paths whose link is gone or that have
// brought nothing for the idle timeout.
func (s *Session) retirePaths(now time.Time, gone *link) {
	if s.mp == nil {
		s.backups.forget(gone)
		return
	}
	idle := s.ep.cfg.Session.IdleTimeout
	for i := 1; i < mux.MaxPaths; i++ {
		p := s.mp.paths[i]
		if !p.valid() {
			continue
		}
		if p.l == gone || idle > 0 && now.Sub(s.mp.recv[i]) >= idle {
			s.m.RemovePath(i)
			s.mp.paths[i] = path{}
		}
	}
	if s.candidate.l == gone && gone != nil {
		s.candidate, s.mp.adding = path{}, false
	}
	s.backups.forget(gone)
}

// pathDeadline is when the session must run for its paths: the end of
// the current validation attempt (zero: none).
func (s *Session) pathDeadline() time.Time {
	if s.mp == nil || !s.mp.adding {
		return time.Time{}
	}
	return s.mp.started.Add(openTimeout)
}
