package endpoint

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/wire"
)

// dial is a handshake in progress towards one peer. Concurrent dials to
// the same peer share it.
type dial struct {
	peer wire.PublicKey
	eph  uint32
	in   chan inPacket // responses and cookie replies from the reader
	done chan struct{} // closed when s or err is set
	// mu guards s and err (set once, before done closes) and failed.
	mu     sync.Mutex
	s      *Session
	err    error
	failed bool
}

// offer hands the dial a handshake reply; dropped when the dial is busy.
func (d *dial) offer(pkt []byte, addr netip.AddrPort) {
	select {
	case d.in <- inPacket{buf: append([]byte(nil), pkt...), addr: addr}:
	default:
	}
}

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
	return ep.SessionAhead(ctx, peer, addr, secure.EphemeralAhead{})
}

// SessionAhead is Session with an ephemeral key pair already being
// generated (secure.StartEphemeral) for the initiation, should this call
// dial. If it does not, ahead is left to finish and be collected.
func (ep *Endpoint) SessionAhead(ctx context.Context, peer wire.PublicKey, addr netip.AddrPort,
	ahead secure.EphemeralAhead) (*Session, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
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
		if d := ep.dialing[peer]; d != nil {
			ep.mu.Unlock()
			select {
			case <-d.done:
				d.mu.Lock()
				s, err := d.s, d.err
				d.mu.Unlock()
				if err != nil {
					return nil, err
				}
				return s, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ep.mu.Unlock()
		break
	}
	eph := ep.reserveEphemeral()
	if eph == 0 {
		return nil, ErrTooMany
	}
	d := &dial{peer: peer, eph: eph, in: make(chan inPacket, 4), done: make(chan struct{})}
	ep.mu.Lock()
	delete(ep.sessions, eph) // the dial holds the value now
	ep.dials[eph] = d
	ep.dialing[peer] = d
	ep.mu.Unlock()
	s, err := ep.runDial(ctx, d, addr, ahead)
	ep.mu.Lock()
	delete(ep.dials, eph)
	if ep.dialing[peer] == d {
		delete(ep.dialing, peer)
	}
	ep.mu.Unlock()
	d.mu.Lock()
	d.s, d.err = s, err
	d.mu.Unlock()
	close(d.done)
	return s, err
}

// runDial drives the initiator until the response, a failure or ctx.
func (ep *Endpoint) runDial(ctx context.Context, d *dial, addr netip.AddrPort, ahead secure.EphemeralAhead) (*Session, error) {
	now := time.Now()
	ini, err := secure.NewInitiatorAhead(ep.id, d.peer, d.eph, 0, ep.cfg.Session.Params(), ep.cfg.Handshake, now, nil, ahead)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		failed, ferr := d.failed, d.err
		d.mu.Unlock()
		if failed {
			return nil, ferr
		}
		pkt, deadline, err := ini.Poll(time.Now())
		if err != nil {
			return nil, err
		}
		if pkt != nil {
			ep.writeTo(pkt, addr)
		}
		timer.Reset(max(time.Until(deadline), 0))
		select {
		case in := <-d.in:
			now := time.Now()
			switch wire.MsgID(in.buf[wire.HeaderLen]) {
			case wire.MsgHandshakeResponse:
				est, err := ini.HandleResponse(in.buf, now)
				if err != nil {
					continue // forged or stale: keep waiting
				}
				if !ep.startSession(d.eph, est, in.addr, now) {
					est.Discard()
					return nil, ErrClosed
				}
				ep.mu.Lock()
				s := ep.sessions[d.eph]
				ep.mu.Unlock()
				return s, nil
			case wire.MsgCookieReply:
				ini.HandleCookieReply(in.buf, now)
			}
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
		ini, err := secure.NewInitiator(s.ep.id, s.peer, s.localEph, s.remoteID.Ephemeral(), s.ep.cfg.Session.Params(), s.ep.cfg.Handshake, now, nil)
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
			s.cur.out = append(s.cur.out, outPacket{buf: append([]byte(nil), pkt...), addr: s.addr, arena: -1})
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
	return true
}
