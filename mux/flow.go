package mux

// Flow-control window tuning. A receiver starts with the configured
// windows and doubles one, up to its maximum, whenever the peer consumes
// it within about two round trips: the window then limits throughput, and
// the bandwidth-delay product needs more (issue #4 item 3).

// autoTuneChannel is called when c's window was (nearly) used up: by a
// window update due after a read, or a BLOCKED from the peer.
func (s *Session) autoTuneChannel(c *channel) {
	if c.recv == nil {
		return
	}
	rtt := s.rec.rtt.Smoothed()
	if !c.lastTune.IsZero() && s.now.Sub(c.lastTune) < 2*rtt {
		w := min(2*c.recv.Window(), s.cfg.MaxChannelWindow)
		if w > c.recv.Window() {
			c.recv.SetWindow(w)
		}
	}
	c.lastTune = s.now
}

// autoTuneSession raises the session limit as the owner consumes data, and
// grows the session window like the channel windows.
func (s *Session) autoTuneSession() {
	if s.readTotal+s.recvWindow/2 < s.recvLimit {
		return
	}
	rtt := s.rec.rtt.Smoothed()
	if !s.lastSessTune.IsZero() && s.now.Sub(s.lastSessTune) < 2*rtt {
		s.recvWindow = min(2*s.recvWindow, uint64(s.cfg.MaxSessionWindow))
	}
	s.lastSessTune = s.now
	if lim := s.readTotal + s.recvWindow; lim > s.recvLimit {
		s.recvLimit = lim
		s.ctrlMaxData = true
		s.sched.wakeControl()
	}
}
