package udpproxy

import (
	"net"
	"time"
)

// idleWait is how long the scheduler sleeps when it has nothing to do; any
// new work pokes it awake earlier.
const idleWait = time.Hour

// schedule is the scheduler goroutine: it sends delayed copies when they
// are due, rotates upstream ports and closes retired sockets after their
// grace period. Doing all timed work in one goroutine keeps the number of
// goroutines fixed, whatever the packet rate.
func (p *Proxy) schedule() {
	defer p.wg.Done()
	timer := time.NewTimer(idleWait)
	defer timer.Stop()
	var due []delayed
	var expired []*net.UDPConn
	for {
		now := time.Now()
		p.mu.Lock()
		due = p.popDue(now, due[:0])
		expired = p.expireRetired(now, expired[:0])
		rotate := !p.nextRotate.IsZero() && !now.Before(p.nextRotate)
		if rotate {
			p.nextRotate = now.Add(p.cfg.RotatePort)
		}
		wait := p.nextWake(now)
		p.mu.Unlock()

		for i := range due {
			d := &due[i]
			p.write(d.dir, d.conn, d.s, (*d.buf)[:d.n])
			putBuf(d.buf)
			due[i] = delayed{}
		}
		for i, c := range expired {
			c.Close()
			expired[i] = nil
		}
		if rotate {
			p.rotate()
			continue // the new retired sockets change the next wake-up
		}

		timer.Reset(wait)
		select {
		case <-p.done:
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// popDue moves the copies due at now from the queue to out, resolving the
// socket each is sent from: the session's current upstream socket for the
// target (so a copy queued before a rotation leaves from the new port), the
// client-facing socket for the client. The caller holds p.mu.
func (p *Proxy) popDue(now time.Time, out []delayed) []delayed {
	for len(p.queue) > 0 && !p.queue[0].at.After(now) {
		d := p.queue.pop()
		switch {
		case d.s.gone:
			d.conn = nil
		case d.dir == toTarget:
			d.conn = d.s.up
		default:
			d.conn = p.client
		}
		out = append(out, d)
	}
	return out
}

// expireRetired removes the retired sockets whose grace period is over and
// appends them to out, for the caller to close. The caller holds p.mu.
func (p *Proxy) expireRetired(now time.Time, out []*net.UDPConn) []*net.UDPConn {
	for _, s := range p.sessions {
		k := 0
		for k < len(s.retired) && !s.retired[k].until.After(now) {
			out = append(out, s.retired[k].conn)
			k++
		}
		if k > 0 {
			s.retired = append(s.retired[:0], s.retired[k:]...)
		}
	}
	return out
}

// nextWake returns how long the scheduler may sleep: until the first
// queued copy, the next rotation or the first grace period ends, whichever
// is earliest. The caller holds p.mu.
func (p *Proxy) nextWake(now time.Time) time.Duration {
	next := now.Add(idleWait)
	if len(p.queue) > 0 && p.queue[0].at.Before(next) {
		next = p.queue[0].at
	}
	if !p.nextRotate.IsZero() && p.nextRotate.Before(next) {
		next = p.nextRotate
	}
	for _, s := range p.sessions {
		if len(s.retired) > 0 && s.retired[0].until.Before(next) {
			next = s.retired[0].until
		}
	}
	return max(next.Sub(now), 0)
}

// rotate gives every session a new upstream socket. The old one keeps
// relaying replies for RotateGrace (at most maxRetired are kept per
// session). Sockets are opened without the lock held; a session evicted or
// a proxy closed meanwhile simply gets its new socket closed again.
func (p *Proxy) rotate() {
	p.mu.Lock()
	list := make([]*session, 0, len(p.sessions))
	for _, s := range p.sessions {
		list = append(list, s)
	}
	p.mu.Unlock()
	if len(list) == 0 {
		return
	}

	fresh := make([]*net.UDPConn, len(list))
	for i := range list {
		// On failure (out of ports or descriptors) the session keeps its
		// current socket until the next rotation.
		fresh[i], _ = p.listenUpstream()
	}

	var stale []*net.UDPConn
	until := time.Now().Add(RotateGrace)
	p.mu.Lock()
	for i, s := range list {
		c := fresh[i]
		switch {
		case c == nil:
			continue
		case p.closed || s.gone:
			stale = append(stale, c)
			continue
		}
		if len(s.retired) >= maxRetired {
			stale = append(stale, s.retired[0].conn)
			s.retired = append(s.retired[:0], s.retired[1:]...)
		}
		s.retired = append(s.retired, retired{conn: s.up, until: until})
		s.up = c
		p.rotations.Add(1)
		p.startReader(s, c)
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
}
