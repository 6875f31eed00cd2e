package mux

import (
	"time"

	"github.com/havenproto/haven/wire"
)

// onTimers runs every timer that has expired by now.
func (s *Session) onTimers(now time.Time) {
	switch s.state {
	case sessClosing, sessDraining:
		if !s.closeUntil.IsZero() && !now.Before(s.closeUntil) {
			s.state = sessClosed
		}
		return
	case sessClosed:
		return
	}
	if s.idle > 0 && now.Sub(s.lastRecv) >= s.idle {
		s.terminate(sessClosed, CloseError{Code: wire.CloseIdle, Reason: "no packet received for the idle timeout"})
		s.state = sessClosed
		return
	}
	if t := s.lossDeadline(); !t.IsZero() && !now.Before(t) {
		s.detectLosses(now)
	}
	if t := s.ptoDeadline(); !t.IsZero() && !now.Before(t) {
		s.onPTO(now)
	}
	if s.fecs != nil {
		s.fecTimers(now)
	}
}

// Deadline returns when Poll must next be called even if no packet
// arrives: the earliest of the acknowledgement, loss, probe, pacing,
// keepalive, idle and closing timers. The zero time means none is armed.
func (s *Session) Deadline() time.Time {
	var d time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	switch s.state {
	case sessClosed:
		return time.Time{}
	case sessClosing, sessDraining:
		if s.state == sessClosing && !s.closeSent {
			return s.now
		}
		return s.closeUntil
	}
	if s.acks.unacked {
		if s.acks.immediate {
			earliest(s.now)
		} else {
			earliest(s.acks.timer())
		}
	}
	earliest(s.lossDeadline())
	earliest(s.ptoDeadline())
	if s.idle > 0 {
		earliest(s.lastRecv.Add(s.idle))
	}
	if s.cfg.KeepAlive > 0 {
		earliest(s.keepAliveAt())
		for _, e := range s.extra {
			if e.live {
				earliest(e.lastSent.Add(s.cfg.KeepAlive))
			}
		}
	}
	// Something to send: probes go at once; everything else waits for the
	// congestion window (an ACK reopens it) and then for the pacer, the
	// same gates Poll applies.
	if s.pingNow {
		earliest(s.now)
	}
	if s.fecs != nil {
		earliest(s.fecDeadline()) // an open FEC group's flush
	}
	work := s.controlPending() || s.sched.hasWork()
	up := s.activeUsable()
	for i := 0; i < s.numPaths(); i++ {
		r := s.path(i)
		switch {
		case !r.live:
		case r.probes > 0:
			earliest(s.now)
		case work && (len(s.extra) == 0 || r.usable(up)) && r.cc.CanSend(r.inFlight):
			earliest(r.pacer.TimeUntilSend(s.now, r.cc.PacingRate(&r.rtt)))
		}
	}
	return d
}

// lossDeadline is the earliest of the paths' loss timers (zero: none).
func (s *Session) lossDeadline() time.Time {
	d := s.rec.lossTime
	for i := 1; i < s.numPaths(); i++ {
		if t := s.path(i).lossTime; !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}
