package mux

import (
	"errors"
	"time"

	"github.com/havenproto/haven/mux/congestion"
)

// Several paths at once (PROTOCOL.md §6.6). A session starts with path 0,
// the one its handshake used, and the owner adds more once it has
// validated them (AddPath: the engine does not validate paths, the owner
// does, PROTOCOL.md §6.6.1). Packet numbers stay session-wide; each
// packet is sent on one path (PollPath says which) and remembers it, and
// every path has its own recovery state: RTT, congestion controller,
// pacer, bytes in flight, loss detection in the path's own packet
// sequence, probe timeout (§6.6.4).
//
// The scheduler (§6.6.5): a probe owed to a path goes on it; otherwise a
// packet with data goes on the usable path with the lowest smoothed RTT
// whose congestion window and pacer allow it, so a full path spills over
// to the next; a packet without (an ACK, a keepalive) goes back on the
// path the latest packet came by (§6.6.3). Usable: live, not suspect, and active, or a
// backup while no active path is usable. A path that sees two probe
// timeouts in a row while another is usable becomes suspect: what it has
// in flight is declared lost (and sent again on the others, without a
// congestion response), it gets only PINGs at its backoff, and an
// acknowledgement of any packet sent on it makes it usable again.
//
// Each path searches its own packet size (pmtu.go). Path 0 keeps the
// session-wide parts: the carrier (SetCarrier), and the RTT that
// flow-control tuning and acknowledgement delays follow.

// MaxPaths is the most paths a session holds at once (PROTOCOL.md §6.6.1).
const MaxPaths = 8

// PathMode says how the scheduler uses a path.
type PathMode uint8

const (
	// PathActive paths carry data, lowest RTT first.
	PathActive PathMode = iota
	// PathBackup paths carry data only while no active path is usable;
	// otherwise only PINGs and ACKs the scheduler sends there.
	PathBackup
)

// Path errors.
var (
	ErrTooManyPaths = errors.New("mux: the session holds MaxPaths paths")
	ErrNoPath       = errors.New("mux: no such path")
)

// extraPath is a path other than 0: its recovery, its packet size and
// path MTU search (pmtu.go), and when a packet last went on it (its
// keepalive; path 0 has the session's).
type extraPath struct {
	recovery
	mtu      int
	pmtu     pmtuState
	lastSent time.Time
}

// path returns path i's recovery state; i must be below numPaths.
func (s *Session) path(i int) *recovery {
	if i == 0 {
		return &s.rec
	}
	return &s.extra[i-1].recovery
}

// keepAliveDue returns a path other than 0 that is live and has carried
// nothing for the keepalive interval, or 0: each path held gets a PING
// then, so that middleboxes keep its bindings and a backup's RTT stays
// known (PROTOCOL.md §6.6.1).
func (s *Session) pathKeepAliveDue(now time.Time) int {
	for i, e := range s.extra {
		if e.live && s.cfg.KeepAlive > 0 && !now.Before(e.lastSent.Add(s.cfg.KeepAlive)) {
			return i + 1
		}
	}
	return 0
}

// numPaths is one more than the highest path id ever given (some may be
// gone: not live).
func (s *Session) numPaths() int { return 1 + len(s.extra) }

// AddPath adds a validated path and returns its id, the smallest free one
// above 0. It starts at the base packet size with a fresh congestion
// controller, and with rtt as its first RTT estimate: the round trip its
// validation took (PATH_CHALLENGE to PATH_RESPONSE), or, for rtt <= 0,
// the lowest smoothed RTT of the session's paths. An estimate in scale
// matters: the pacer spreads the first window over it, and the first
// probe timeout follows it (the default, 333 ms, would slow a backup that
// takes over to a crawl for its first round trips).
func (s *Session) AddPath(mode PathMode, rtt time.Duration) (int, error) {
	if s.state != sessOpen {
		return 0, ErrSessionClosed
	}
	id := 0
	for i := 1; i < s.numPaths(); i++ {
		if !s.path(i).live {
			id = i
			break
		}
	}
	if id == 0 {
		if s.numPaths() == MaxPaths {
			return 0, ErrTooManyPaths
		}
		s.extra = append(s.extra, new(extraPath))
		id = len(s.extra)
	}
	e := s.extra[id-1]
	e.lastSent, e.mtu = s.now, s.baseMTU
	if rtt <= 0 {
		rtt, _ = s.lowestRTT()
	}
	r := s.path(id)
	*r = recovery{}
	r.init(s.newController(s.baseMTU), s.baseMTU)
	r.pacer.SetRateBurst(true)
	s.initPMTU(id, s.maxMTU)
	r.mode = mode
	s.acks.multipath()
	for c := range s.channels.All() {
		c.multipathGaps() // streams see the same interleaving in their offsets
	}
	if rtt > 0 {
		r.rtt.SetInitialRTT(rtt)
	}
	if s.cfg.Trace != nil {
		s.trace(&TraceEvent{Kind: TracePathAdded, Path: id})
	}
	return id, nil
}

// newController makes a congestion controller for packets of mtu bytes:
// Config.NewController's, or CUBIC.
func (s *Session) newController(mtu int) congestion.Controller {
	if s.cfg.NewController != nil {
		return s.cfg.NewController(mtu)
	}
	c := new(congestion.Cubic)
	c.Init(congestion.CubicConfig{MaxDatagramSize: mtu})
	return c
}

// lowestRTT returns the lowest smoothed RTT among the live paths that
// have a sample.
func (s *Session) lowestRTT() (time.Duration, bool) {
	var best time.Duration
	known := false
	for i := 0; i < s.numPaths(); i++ {
		r := s.path(i)
		if r.live && r.rtt.HasSample() && (!known || r.rtt.Smoothed() < best) {
			best, known = r.rtt.Smoothed(), true
		}
	}
	return best, known
}

// RemovePath retires path id (not 0, which the owner moves instead): what
// it has in flight is declared lost and sent again on the other paths.
func (s *Session) RemovePath(id int) error {
	if id <= 0 || id >= s.numPaths() || !s.path(id).live {
		return ErrNoPath
	}
	s.abandonPath(id, false)
	s.path(id).live = false
	if s.cfg.Trace != nil {
		s.trace(&TraceEvent{Kind: TracePathRemoved, Path: id})
	}
	return nil
}

// PathStats describes one path of a session.
type PathStats struct {
	Live, Suspect    bool
	Mode             PathMode
	SmoothedRTT      time.Duration
	CongestionWindow int
	BytesInFlight    int
	PacketSize       int    // the packet size in use on the path, tag included (pmtu.go)
	PTOCount         int    // probe timeouts in a row with packets outstanding
	PacketsSent      uint64 // packets sent on the path
	BytesSent        uint64 // their bytes, tag included
	PacketsLost      uint64 // packets sent on the path declared lost
}

// PathStats returns path id's state; ok is false for an id never given.
func (s *Session) PathStats(id int) (st PathStats, ok bool) {
	if id < 0 || id >= s.numPaths() {
		return PathStats{}, false
	}
	r := s.path(id)
	mtu, _ := s.mtuOf(id)
	return PathStats{
		Live: r.live, Suspect: r.suspect, Mode: r.mode, PacketSize: *mtu,
		SmoothedRTT: r.rtt.Smoothed(), CongestionWindow: r.cc.Window(), BytesInFlight: r.inFlight,
		PTOCount: r.ptoCount, PacketsSent: r.sentPackets, BytesSent: r.sentBytes, PacketsLost: r.lostPackets,
	}, true
}

// usable reports whether path r may carry data: live, not suspect, and
// active unless no active path is usable (activeUp false).
func (r *recovery) usable(activeUp bool) bool {
	return r.live && !r.suspect && (r.mode == PathActive || !activeUp)
}

// activeUsable reports whether some active path is live and not suspect.
func (s *Session) activeUsable() bool {
	for i := 0; i < s.numPaths(); i++ {
		if r := s.path(i); r.live && !r.suspect && r.mode == PathActive {
			return true
		}
	}
	return false
}

// canSend reports whether path r's congestion window and pacer let a
// packet go now.
func (r *recovery) canSend(now time.Time) bool {
	return r.cc.CanSend(r.inFlight) && !r.pacer.TimeUntilSend(now, r.cc.PacingRate(&r.rtt)).After(now)
}

// pickPath chooses the path of the next packet (PROTOCOL.md §6.6.5) and
// reports whether it may carry data: a path owed a probe; else the usable
// path with the lowest RTT that can send; else (false) the usable path
// with the lowest RTT, for an ACK or a PING.
func (s *Session) pickPath(now time.Time) (int, bool) {
	if len(s.extra) == 0 {
		r := &s.rec
		return 0, r.probes > 0 || r.canSend(now)
	}
	n := s.numPaths()
	for i := 0; i < n; i++ {
		if r := s.path(i); r.live && r.probes > 0 {
			return i, true
		}
	}
	if best := s.fastest(s.activeUsable(), true, now); best >= 0 {
		return best, true
	}
	return s.ackPath(), false
}

// fastest returns the usable path with the lowest smoothed RTT (that
// can send now, with sending), or -1.
func (s *Session) fastest(up, sending bool, now time.Time) int {
	best := -1
	for i := 0; i < s.numPaths(); i++ {
		r := s.path(i)
		if r.usable(up) && (!sending || r.canSend(now)) && (best < 0 || r.rtt.Smoothed() < s.path(best).rtt.Smoothed()) {
			best = i
		}
	}
	return best
}

// ackPath is the path for a packet without data: the path the latest
// packet came by (ReceivePath) while it is live; else the usable path
// with the lowest RTT; if none is usable, the live path with the fewest
// probe timeouts.
func (s *Session) ackPath() int {
	if len(s.extra) == 0 {
		return 0
	}
	if s.path(int(s.rxPath)).live {
		return int(s.rxPath)
	}
	best := s.fastest(s.activeUsable(), false, time.Time{})
	if best >= 0 {
		return best
	}
	for i := 0; i < s.numPaths(); i++ {
		if r := s.path(i); r.live && (best < 0 || r.ptoCount < s.path(best).ptoCount) {
			best = i
		}
	}
	return max(best, 0)
}

// otherUsable reports whether a path other than k could carry data.
func (s *Session) otherUsable(k int) bool {
	for i := 0; i < s.numPaths(); i++ {
		if r := s.path(i); i != k && r.live && !r.suspect {
			return true
		}
	}
	return false
}

// abandonPath declares everything outstanding on path k lost and queues
// its messages again, with no congestion response (the path went dark,
// or away; PROTOCOL.md §6.6.5). keepPTO keeps the probe timeout count, so
// that a suspect path's probes back off.
func (s *Session) abandonPath(k int, keepPTO bool) {
	r := s.path(k)
	for i := 0; i < s.sent.n; i++ {
		p := s.sent.get(s.sent.base + uint64(i))
		if p.state != pktOutstanding || int(p.path) != k {
			continue
		}
		s.markLost(r, p, s.sent.base+uint64(i), LossAbandoned)
	}
	r.lossTime = time.Time{}
	r.probes = 0
	if !keepPTO {
		r.ptoCount = 0
	}
}

// markLost declares outstanding packet p (number pn) of path r lost, for
// reason, and queues its messages again.
func (s *Session) markLost(r *recovery, p *sentPacket, pn uint64, reason LossReason) {
	if s.cfg.Trace != nil {
		s.trace(&TraceEvent{Kind: TracePacketLost, PN: pn, Size: p.size, Path: int(p.path), Reason: reason})
	}
	p.state = pktLost
	if p.inFlight {
		r.inFlight -= p.size
	}
	if p.eliciting {
		r.eliciting--
	}
	r.lostPackets++
	s.stats.PacketsLost++
	s.framesLost(p)
}

// seqBefore reports whether path sequence number a comes before b
// (modulo 2³²).
func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }
