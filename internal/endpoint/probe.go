package endpoint

import "time"

// A session that fell back to TCP returns to UDP when UDP passes again
// (issue #13, PROTOCOL.md §8.2): the dialing side probes, from time to
// time, the path over its endpoint's UDP socket to the peer's address (a
// listener serves UDP and TCP at the same port number), with a
// PATH_CHALLENGE in a packet of its own. The peer answers as it answers
// any new path: it validates the path the challenge came by and moves
// there once its own challenge is answered. This side moves when the
// PATH_RESPONSE comes back over UDP. Until then everything else keeps
// going over TCP, so a UDP path that still drops everything costs one
// small packet per probe.

// Probe timing: the first probe ProbeUDPFirst after the session started
// on TCP, then after waits that double up to ProbeUDPMax.
const (
	ProbeUDPFirst = 2 * time.Second
	ProbeUDPMax   = time.Minute
)

// udpProbe is a session's probing of UDP, guarded by the session's mu.
type udpProbe struct {
	at  time.Time     // when to probe next; zero: no probing
	gap time.Duration // the wait after the next probe
}

// start arms the probing of a new session: one this side dialed over a
// reliable link of an endpoint whose first link is a UDP socket.
func (p *udpProbe) start(s *Session, now time.Time) {
	if s.initiator && s.at.reliable() && !s.ep.primary.caps.Reliable {
		p.at, p.gap = now.Add(ProbeUDPFirst), 2*ProbeUDPFirst
	}
}

// run sends a probe if one is due: a new challenge on the UDP path to the
// peer's address.
func (p *udpProbe) run(s *Session, now time.Time) {
	if p.at.IsZero() || now.Before(p.at) {
		return
	}
	s.startValidation(s.ep.primaryPath(s.at.addr))
	p.at = now.Add(p.gap)
	p.gap = min(2*p.gap, ProbeUDPMax)
}

// moved ends the probing once the session's path is on a datagram link.
func (p *udpProbe) moved(s *Session) {
	if !s.at.reliable() {
		p.at = time.Time{}
	}
}

// deadline returns when the session's timer must fire for the probe
// (zero: never).
func (p *udpProbe) deadline() time.Time { return p.at }
