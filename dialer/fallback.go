package dialer

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/havenproto/haven/compat"
	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/wire"
)

// The TCP fallback of a Pool (docs/PROTOCOL.md §8): the race of a "haven"
// dial, the fallback connections as links of the UDP endpoint, and their
// upkeep.

// FallbackDelay is how long a dial waits for the UDP handshake before it
// also tries TCP (docs/PROTOCOL.md §8, happy-eyeballs style: RFC 8305
// recommends 250 ms between attempts; a handshake on a working path
// takes one round trip, and on a lossy one the first retransmission comes
// after 1 s, so a path that loses the first initiation gets a second, on
// UDP, at 300 ms as well). The first attempt to complete wins; the other
// is cancelled.
const FallbackDelay = 300 * time.Millisecond

// result is one attempt's outcome in race.
type result struct {
	s   *endpoint.Session
	err error
}

// race dials peer over UDP on ep and, if that has not completed within
// FallbackDelay, over TCP as well, on a TCP connection that becomes a
// link of ep; the first to complete wins (Endpoint.SessionVia) and the
// other is cancelled. Until FallbackDelay the UDP dial runs alone, as a
// plain dial with that deadline: a working path pays nothing for the
// fallback. After it, UDP starts afresh (a new initiation, as an early
// retransmission) beside the TCP attempt on another goroutine. When UDP
// wins, the TCP connection is closed.
func (p *Pool) race(ctx context.Context, deadline time.Time, network string, ep *endpoint.Endpoint,
	peer wire.PublicKey, addr netip.AddrPort, ahead secure.EphemeralAhead, svc endpoint.FirstService) (*endpoint.Session, error) {
	first := time.Now().Add(FallbackDelay)
	if !deadline.IsZero() && deadline.Before(first) {
		first = deadline
	}
	s, err := ep.SessionAhead(ctx, first, peer, addr, ahead, svc)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || first.Equal(deadline) {
		return s, err
	}
	uctx, ucancel := context.WithCancel(ctx)
	defer ucancel()
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	tcp := make(chan result, 1)
	go func() {
		s, err := p.fallBack(tctx, deadline, network, ep, peer, addr, svc)
		if err == nil {
			ucancel() // TCP won: stop the UDP dial
		}
		tcp <- result{s, err}
	}()
	s, err = ep.SessionAhead(uctx, deadline, peer, addr, secure.EphemeralAhead{}, svc)
	if err == nil {
		tcancel() // UDP won: end the TCP attempt
	}
	r := <-tcp
	switch {
	case err == nil:
	case r.err == nil:
		s, err = r.s, nil
	case ctx.Err() == nil && errors.Is(err, context.Canceled):
		err = r.err // cancelled by nobody but us: TCP's error is the news
	}
	if err == nil && !s.Stream() {
		p.dropFallback(linkKey{network, addr}) // UDP got through: no TCP connection kept
	}
	return s, err
}

// fallBack dials peer over the pool's TCP connection to addr, a link of
// ep, made (connection, then link) when there is none or it went down.
func (p *Pool) fallBack(ctx context.Context, deadline time.Time, network string, ep *endpoint.Endpoint,
	peer wire.PublicKey, addr netip.AddrPort, svc endpoint.FirstService) (*endpoint.Session, error) {
	key := linkKey{network, addr}
	p.mu.Lock()
	fb, ok := p.fallbacks[key]
	p.mu.Unlock()
	if ok && !fb.t.Connected() {
		p.dropFallback(key)
		ok = false
	}
	if !ok {
		dctx := ctx
		if !deadline.IsZero() {
			var cancel context.CancelFunc
			dctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		t, err := compat.DialStream(dctx, p.laddr, addr, p.streamConfig())
		if err != nil {
			return nil, err
		}
		l, err := ep.AddTransport(t)
		if err != nil {
			return nil, err
		}
		fb = fallback{link: l, t: t}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.Close()
			return nil, endpoint.ErrClosed
		}
		if old, ok := p.fallbacks[key]; ok { // a concurrent dial made one too: use it
			p.mu.Unlock()
			l.Close()
			fb = old
		} else {
			if p.fallbacks == nil {
				// Made by the first fallback: a dial allocates none.
				p.fallbacks, p.quit = make(map[linkKey]fallback), make(chan struct{})
			}
			p.fallbacks[key] = fb
			p.mu.Unlock()
			go p.keepUp(key, ep, fb, p.quit)
		}
	}
	return ep.SessionVia(ctx, deadline, peer, addr, fb.link, secure.EphemeralAhead{}, svc)
}

// Reconnection of a fallback connection that broke: up to reconnectTries
// attempts, reconnectFirst apart and then twice as long each time. Every
// idleCheck a fallback connection no session uses any more (they returned
// to UDP, or ended) is closed.
const (
	reconnectTries = 5
	reconnectFirst = 250 * time.Millisecond
)

const idleCheck = 30 * time.Second

// keepUp watches the fallback connection fb to key's server: when it
// breaks while the pool still uses it, it connects again and moves the
// sessions on it to the new connection (Endpoint.MoveSessions), as TCP
// itself cannot: a NAT rebinding or a reset kills a connection, not a
// session. It gives up after reconnectTries failed attempts; the sessions
// then end by their idle timeout, or move to UDP by their probes. It also
// closes the connection once no session uses it. One goroutine per
// fallback connection; it returns when the pool drops or replaces the
// connection, or closes.
func (p *Pool) keepUp(key linkKey, ep *endpoint.Endpoint, fb fallback, quit <-chan struct{}) {
	idle := time.NewTicker(idleCheck)
	defer idle.Stop()
	for {
		select {
		case <-fb.t.Ended():
		case <-idle.C:
			if fb.link.InUse() {
				continue
			}
		case <-quit:
			return
		}
		if !fb.link.InUse() {
			// Its sessions ended or returned to UDP: nothing to keep up.
			if p.current(key, fb) {
				p.dropFallback(key)
			}
			return
		}
		wait := reconnectFirst
		var next fallback
		for try := 0; try < reconnectTries && next.link == nil; try++ {
			if !p.current(key, fb) {
				return // dropped, replaced or closed: not ours to mend
			}
			tm := time.NewTimer(wait)
			select {
			case <-tm.C:
			case <-quit:
				tm.Stop()
				return
			}
			wait *= 2
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			t, err := compat.DialStream(ctx, p.laddr, key.addr, p.streamConfig())
			cancel()
			if err != nil {
				continue
			}
			l, err := ep.AddTransport(t)
			if err != nil {
				return // the endpoint closed
			}
			next = fallback{link: l, t: t}
		}
		if next.link == nil {
			p.dropFallback(key)
			return
		}
		p.mu.Lock()
		if p.closed || p.fallbacks[key] != fb {
			p.mu.Unlock()
			next.link.Close()
			return
		}
		p.fallbacks[key] = next
		p.mu.Unlock()
		ep.MoveSessions(fb.link, next.link)
		fb.link.Close()
		fb = next
	}
}

// current reports whether fb is still the pool's fallback connection for
// key.
func (p *Pool) current(key linkKey, fb fallback) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.closed && p.fallbacks[key] == fb
}

// dropFallback closes the pool's TCP connection of key, if any.
func (p *Pool) dropFallback(key linkKey) {
	p.mu.Lock()
	fb, ok := p.fallbacks[key]
	delete(p.fallbacks, key)
	p.mu.Unlock()
	if ok {
		fb.link.Close()
	}
}
