package endpoint

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/havenproto/haven/alignment"
	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/wire"
)

// dial is a handshake in progress towards one peer. Concurrent dials to
// the same peer share it.
//
// Dials are recycled through dialPool with their channel and timer, so a
// dial on a warm endpoint allocates none of them. A dial is put back only
// when nobody else can read its result: no second caller waited on it
// (done is nil), and it has left ep.dials, so that only a reader that
// looked it up just before may still offer it a reply, which the next
// user drops unauthenticated (replies name their dial's ephemeral value).
type dial struct {
	peer wire.PublicKey
	via  *link // the link the dial goes over
	eph  uint32
	// in carries handshake replies from the reader, each in a packetPool
	// buffer that the receiving side puts back.
	in    chan inPacket
	timer *time.Timer // retransmissions; stopped while the dial is pooled
	// done is made by the first caller that waits for another's dial, and
	// closed when the dial ends; both under the endpoint's mu.
	done chan struct{}
	// mu guards s and err (set once, before the dial ends), failed and
	// abandoned.
	mu     sync.Mutex
	s      *Session
	err    error
	failed bool
	// abandoned says the dial ended because its owner's context or
	// deadline did, not because of the peer or the path: callers that
	// waited on it dial afresh within their own limits instead of
	// taking the owner's error.
	abandoned bool
}

var dialPool = sync.Pool{New: func() any { return &dial{in: make(chan inPacket, 4)} }}

// newDial takes a dial from the pool, emptied of anything offered late.
func newDial(peer wire.PublicKey, via *link, eph uint32) *dial {
	d := dialPool.Get().(*dial)
	d.drain()
	d.peer, d.via, d.eph = peer, via, eph
	return d
}

// drain puts back the buffers of replies nobody will read.
func (d *dial) drain() {
	for {
		select {
		case p := <-d.in:
			p.pool.Put(p.pb)
		default:
			return
		}
	}
}

// recycle returns a dial nobody else refers to (see dial) to the pool.
func (d *dial) recycle() {
	d.drain()
	if d.timer != nil {
		d.timer.Stop()
	}
	t, in := d.timer, d.in
	*d = dial{timer: t, in: in}
	dialPool.Put(d)
}

// offer hands the dial a handshake reply, copied into a packetPool buffer;
// dropped when the dial is busy.
func (d *dial) offer(pool *alignment.Pool, pkt []byte, from path) {
	pb, ok := pool.Get(len(pkt))
	if !ok {
		return
	}
	b := pb.Bytes()[:len(pkt)]
	copy(b, pkt)
	select {
	case d.in <- inPacket{buf: b, from: from, pb: pb, pool: pool}:
	default:
		pool.Put(pb)
	}
}

// wait waits for another caller's dial to end (done), ctx or deadline.
func (d *dial) wait(ctx context.Context, deadline time.Time, done chan struct{}) (*Session, error) {
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := getTimer(time.Until(deadline))
		defer putTimer(t)
		expired = t.C
	}
	select {
	case <-expired:
		return nil, context.DeadlineExceeded
	case <-done:
		d.mu.Lock()
		s, err, abandoned := d.s, d.err, d.abandoned
		d.mu.Unlock()
		if abandoned {
			return nil, errOwnerGaveUp
		}
		if err != nil {
			return nil, err
		}
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// errOwnerGaveUp tells a caller that waited on another's dial that the
// owner stopped for its own reasons (see dial.abandoned): it dials anew.
var errOwnerGaveUp = errors.New("endpoint: the dial waited on was given up by its caller")

func (d *dial) fail(err error) {
	d.mu.Lock()
	if !d.failed && d.s == nil {
		d.failed, d.err = true, err
	}
	d.mu.Unlock()
}

// Session returns a session with peer at addr: an existing one, one being
// dialed by another goroutine, or a new one after a handshake. The dial
// honours ctx and the handshake timeout.
func (ep *Endpoint) Session(ctx context.Context, peer wire.PublicKey, addr netip.AddrPort) (*Session, error) {
	return ep.SessionAhead(ctx, time.Time{}, peer, addr, secure.EphemeralAhead{}, FirstService{})
}

// FirstService names the stream service a dial's caller will open first
// on the session. The handshake asks the responder whether it serves it
// (PROTOCOL.md §7.2), and a "served" answer counts as that service's
// first ACCEPT (Stream.ServiceAccepted), so the caller need not wait a
// round trip for one. The zero value asks nothing. Only a dial that
// makes a new session asks; one that finds or joins a session does not.
type FirstService struct {
	Name string
	Ask  bool
}

// Live returns the endpoint's session with peer if it has one that is not
// ending, without dialing: nil otherwise.
func (ep *Endpoint) Live(peer wire.PublicKey) *Session {
	ep.mu.Lock()
	s := ep.byPeer[peer]
	ep.mu.Unlock()
	if s == nil || s.closing() {
		return nil
	}
	return s
}

// SessionAhead is Session with a deadline (zero: none; when it passes the
// call fails with context.DeadlineExceeded, as a context with that
// deadline would, without the cost of making one) and an ephemeral key
// pair already being generated (secure.StartEphemeral) for the
// initiation, should this call dial. If it does not, ahead is left to
// finish and be collected.
func (ep *Endpoint) SessionAhead(ctx context.Context, deadline time.Time, peer wire.PublicKey, addr netip.AddrPort,
	ahead secure.EphemeralAhead, first FirstService) (*Session, error) {
	return ep.SessionVia(ctx, deadline, peer, addr, nil, ahead, first)
}

// SessionVia is SessionAhead over the link via (nil: the endpoint's first
// transport). Dials to one peer over different links do not wait for
// each other: the first to complete wins, and a later one returns the
// winner's session after closing its own (the fallback race of
// dialer.Pool, PROTOCOL.md §8.1).
func (ep *Endpoint) SessionVia(ctx context.Context, deadline time.Time, peer wire.PublicKey, addr netip.AddrPort,
	via *Link, ahead secure.EphemeralAhead, first FirstService) (*Session, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	l := &ep.primary
	if via != nil {
		l = via.l
	}
	key := dialKey{peer, l}
	if ep.cfg.Authorize != nil && !ep.cfg.Authorize(peer) {
		return nil, secure.ErrUnauthorized // not even a session made before the policy changed
	}
	for {
		ep.mu.Lock()
		if ep.closed {
			ep.mu.Unlock()
			return nil, ErrClosed
		}
		if s := ep.byPeer[peer]; s != nil {
			ep.mu.Unlock()
			if !s.closing() {
				return s, nil
			}
			ep.forget(s, false)
			continue
		}
		if d := ep.dialing[key]; d != nil {
			if d.done == nil {
				d.done = make(chan struct{})
			}
			done := d.done
			ep.mu.Unlock()
			s, err := d.wait(ctx, deadline, done)
			if err == errOwnerGaveUp {
				continue // another caller's limits ended its dial, not ours
			}
			return s, err
		}
		ep.mu.Unlock()
		break
	}
	eph := ep.reserveEphemeral()
	if eph == 0 {
		return nil, ErrTooMany
	}
	d := newDial(peer, l, eph)
	ep.mu.Lock()
	delete(ep.sessions, eph) // the dial holds the value now
	ep.dials[eph] = d
	ep.dialing[key] = d
	ep.mu.Unlock()
	s, err := ep.runDial(ctx, deadline, d, path{l, addr}, ahead, first)
	if err == nil {
		s = ep.firstWins(s)
	}
	d.mu.Lock()
	d.s, d.err = s, err
	d.abandoned = errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	d.mu.Unlock()
	ep.mu.Lock()
	delete(ep.dials, eph)
	if ep.dialing[key] == d {
		delete(ep.dialing, key)
	}
	waited := d.done != nil
	if waited {
		close(d.done) // the waiters read s and err; d is theirs too now
	}
	ep.mu.Unlock()
	if !waited {
		d.recycle()
	}
	return s, err
}

// dialKey names a dial in progress: to a peer, over a link.
type dialKey struct {
	peer wire.PublicKey
	via  *link
}

// firstWins returns the session a dial that just completed should give
// its caller: s, unless another dial of ours to the peer (over another
// link) completed first, whose session is then the peer's and s closes. A
// session the peer dialed (two ends dialing each other at once) is no
// rival: each end keeps the one it dialed, as before there were links.
func (ep *Endpoint) firstWins(s *Session) *Session {
	ep.mu.Lock()
	w := ep.byPeer[s.peer]
	ep.mu.Unlock()
	if w == nil || w == s || w.closing() || !w.initiator {
		return s
	}
	s.Close(wire.CloseNormal, "another path won")
	return w
}

// runDial drives the initiator until the response, a failure, ctx or the
// deadline.
func (ep *Endpoint) runDial(ctx context.Context, deadline time.Time, d *dial, to path,
	ahead secure.EphemeralAhead, first FirstService) (*Session, error) {
	addr := to.addr
	now := time.Now()
	hc := ep.cfg.Handshake
	if first.Ask {
		hc.ServiceHint = wire.ServiceHint(first.Name)
	}
	ini, err := secure.NewInitiatorAhead(ep.id, d.peer, d.eph, 0, ep.cfg.Session.Params(), hc, now, nil, ahead)
	if err != nil {
		return nil, err
	}
	// A cookie from an earlier dial to this responder spares the cookie
	// round trip of a rate-limited or loaded responder; a new one this
	// dial receives is kept for the next.
	given, had := ep.cookieFor(d.peer, addr)
	if had {
		ini.UseCookie(given, now)
	}
	defer func() {
		if c, ok := ini.Cookie(); ok && (!had || c != given) {
			ep.keepCookie(d.peer, addr, c)
		}
	}()
	if d.timer == nil {
		d.timer = time.NewTimer(time.Hour)
	}
	timer := d.timer
	for {
		d.mu.Lock()
		failed, ferr := d.failed, d.err
		d.mu.Unlock()
		if failed {
			return nil, ferr
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return nil, context.DeadlineExceeded
		}
		pkt, wake, err := ini.Poll(now)
		if err != nil {
			return nil, err
		}
		if pkt != nil {
			ep.writeTo(pkt, to)
		}
		if !deadline.IsZero() && deadline.Before(wake) {
			wake = deadline
		}
		timer.Reset(max(time.Until(wake), 0))
		select {
		case in := <-d.in:
			now := time.Now()
			var est *secure.Established
			switch wire.MsgID(in.buf[wire.HeaderLen]) {
			case wire.MsgHandshakeResponse:
				est, err = ini.HandleResponse(in.buf, now)
			case wire.MsgCookieReply:
				ini.HandleCookieReply(in.buf, now)
			}
			in.pool.Put(in.pb)
			if est == nil || err != nil {
				continue // a cookie, or forged or stale: keep waiting
			}
			served := first.Ask && est.ServiceServed
			if !ep.startSession(d.eph, est, in.from, now) {
				est.Discard()
				return nil, ErrClosed
			}
			ep.mu.Lock()
			s := ep.sessions[d.eph]
			ep.mu.Unlock()
			if served && s != nil {
				s.mu.Lock()
				s.served.add(first.Name)
				s.mu.Unlock()
			}
			return s, nil
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ep.done:
			return nil, ErrClosed
		}
	}
}

// runRekey starts or advances a rekey of the session's keys (§7.6); called
// by the running worker with s.mu held.
func (s *Session) runRekey(now time.Time) {
	s.inMu.Lock()
	replies := s.hsIn
	s.hsIn = nil
	s.inMu.Unlock()
	if s.rekey != nil {
		for _, pkt := range replies {
			switch wire.MsgID(pkt[wire.HeaderLen]) {
			case wire.MsgHandshakeResponse:
				if est, err := s.rekey.HandleResponse(pkt, now); err == nil {
					if s.tr.Install(est, now) != nil {
						est.Discard()
					} else {
						s.keyed = now
						if s.trc != nil {
							s.trc.keyUpdate(now, s.tr.KeySets(), true)
						}
					}
					s.rekey = nil
					return
				}
			case wire.MsgCookieReply:
				s.rekey.HandleCookieReply(pkt, now)
			}
		}
	}
	if s.rekey == nil && s.tr.NeedsRekey(now) {
		hc := s.ep.cfg.Handshake
		hc.Suite = s.suite // a rekey speaks its session's construction
		ini, err := secure.NewInitiator(s.ep.id, s.peer, s.localEph, s.remoteID.Ephemeral(), s.ep.cfg.Session.Params(), hc, now, nil)
		if err != nil {
			return
		}
		s.rekey = ini
	}
	if s.rekey != nil {
		pkt, _, err := s.rekey.Poll(now)
		if err != nil {
			s.rekey = nil // timed out: NeedsRekey will ask again; hard limits close the session
			return
		}
		if pkt != nil {
			s.cur.out = append(s.cur.out, outPacket{buf: append([]byte(nil), pkt...), to: s.at, arena: -1})
		}
	}
}

// rekeyReply queues a handshake reply for the session's own rekey.
func (s *Session) rekeyReply(pkt []byte) {
	s.inMu.Lock()
	if len(s.hsIn) < 4 {
		s.hsIn = append(s.hsIn, append([]byte(nil), pkt...))
	}
	s.inMu.Unlock()
	s.kick()
}

// rekeyed installs keys from a rekey the peer initiated and reports
// whether the response should be sent: not when this side's own crossing
// rekey wins the tie-break (secure.YieldsRekey).
func (s *Session) rekeyed(est *secure.Established, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rekey != nil {
		if !secure.YieldsRekey(s.ep.id.PublicKey(), s.peer) {
			return false
		}
		s.rekey = nil
	}
	if err := s.tr.Install(est, now); err != nil {
		return false
	}
	s.keyed = now
	if s.trc != nil {
		s.trc.keyUpdate(now, s.tr.KeySets(), false)
	}
	return true
}
