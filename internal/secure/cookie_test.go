package secure

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

func TestCookieUnderLoad(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	load := LoadState{Overloaded: true}
	in := p.initiator(t, 0x1b2c3d4e, 0, at(0))
	init1 := firstInit(t, in, at(0))

	reply, err := p.r.HandleInitiation(nil, init1, srcAddr, at(0), load, 7)
	if err != nil || reply.Kind != ReplyCookie || reply.Session != nil || len(reply.Packet) != wire.CookiePacketLen {
		t.Fatalf("under load: %v kind %d, %d bytes", err, reply.Kind, len(reply.Packet))
	}
	var h wire.Header
	if err := h.Parse(reply.Packet); err != nil || h.Destination != wire.MakePeerID(p.ini.AuthTag(), 0x1b2c3d4e) ||
		h.Source != wire.MakePeerID(p.resp.AuthTag(), 0) {
		t.Fatalf("cookie reply header %+v %v", h, err)
	}
	cookie1 := bytes.Clone(reply.Packet)

	// The cookie reply left no state behind: the same initiation is
	// answered once the load is gone (its timestamp was never recorded).
	p2 := newPair(t, ResponderConfig{})
	if r, err := p2.r.HandleInitiation(nil, init1, srcAddr, at(0), load, 7); err != nil || r.Kind != ReplyCookie {
		t.Fatal(err)
	}
	if r, err := p2.r.HandleInitiation(nil, init1, srcAddr, at(0), LoadState{}, 7); err != nil || r.Kind != ReplyResponse {
		t.Fatalf("after a cookie reply, without load: %v kind %d", err, r.Kind)
	}

	if err := in.HandleCookieReply(cookie1, at(100*ms)); err != nil {
		t.Fatal(err)
	}
	// The cookie makes the next initiation due at once (not at the backoff
	// time), and it carries mac2.
	dl := at(100 * ms)
	init2, _, err := in.Poll(dl)
	if err != nil || init2 == nil || isZero16(init2[wire.InitMAC2Offset:]) {
		t.Fatalf("initiation after the cookie: %v, %d bytes", err, len(init2))
	}
	init2 = bytes.Clone(init2)
	// The old cookie reply is bound to init1's mac1: it does not
	// authenticate against init2.
	if err := in.HandleCookieReply(cookie1, dl); err != ErrBadCookie {
		t.Fatalf("cookie reply for another initiation: %v", err)
	}
	// The same mac2 from another address is not valid.
	if r, err := p.r.HandleInitiation(nil, init2, otherAddr, dl, load, 7); err != nil || r.Kind != ReplyCookie {
		t.Fatalf("mac2 from another address: %v kind %d", err, r.Kind)
	}
	reply, err = p.r.HandleInitiation(nil, init2, srcAddr, dl, load, 7)
	if err != nil || reply.Kind != ReplyResponse {
		t.Fatalf("initiation with a valid cookie under load: %v kind %d", err, reply.Kind)
	}
	if _, err := in.HandleResponse(reply.Packet, dl); err != nil {
		t.Fatal(err)
	}
}

// TestCookieLifetime: a cookie is used for 120 s after it arrived, and the
// responder accepts it under the current or the previous secret.
func TestCookieLifetime(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	load := LoadState{Overloaded: true}
	cfg := HandshakeConfig{Timeout: time.Hour, RetransmitBase: 50 * time.Second, RetransmitMax: 50 * time.Second}
	in, err := NewInitiator(p.ini, p.resp.PublicKey(), 1, 0, DefaultParams(), cfg, at(0), p.rand)
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := p.r.HandleInitiation(nil, firstInit(t, in, at(0)), srcAddr, at(0), load, 7)
	if err := in.HandleCookieReply(reply.Packet, at(0)); err != nil {
		t.Fatal(err)
	}
	// Retransmissions at about 50 s and 100 s use the cookie; the secret
	// rotated at 120 s is still accepted as the previous one at 130 s.
	var withMAC2 [][]byte
	var sent []time.Time
	for now := at(time.Second); now.Before(at(200 * time.Second)); now = now.Add(time.Second) {
		pkt, _, err := in.Poll(now)
		if err != nil {
			t.Fatal(err)
		}
		if pkt != nil {
			withMAC2 = append(withMAC2, bytes.Clone(pkt))
			sent = append(sent, now)
		}
	}
	if len(sent) < 3 {
		t.Fatalf("only %d retransmissions", len(sent))
	}
	for i, pkt := range withMAC2 {
		fresh := sent[i].Sub(at(0)) < DefaultCookieLifetime
		if isZero16(pkt[wire.InitMAC2Offset:]) == fresh {
			t.Fatalf("retransmission at %v: mac2 %x", sent[i].Sub(t0), pkt[wire.InitMAC2Offset:])
		}
	}
	// Rotation: force the secret to turn over twice and check validity.
	j := newCookieJar(&p.resp.cookieKey, 120*time.Second)
	rnd := seeded(7)
	mac2For := func(now time.Time) []byte {
		if err := j.refresh(now, rnd); err != nil {
			t.Fatal(err)
		}
		j.compute(&j.cur, srcAddr)
		pkt := bytes.Clone(withMAC2[0])
		return remac2(pkt, &j.cookie)
	}
	pkt := mac2For(at(0))
	for _, c := range []struct {
		when time.Duration
		ok   bool
	}{{time.Second, true}, {130 * time.Second, true}, {250 * time.Second, false}} {
		if err := j.refresh(at(c.when), rnd); err != nil {
			t.Fatal(err)
		}
		if got := j.validMAC2(pkt, srcAddr); got != c.ok {
			t.Errorf("cookie from 0 s at %v: valid %v, want %v", c.when, got, c.ok)
		}
	}
}

// TestRateLimit: a flooding source gets cookie replies once its burst is
// spent, a quiet source is unaffected, and the bucket refills.
func TestRateLimit(t *testing.T) {
	p := newPair(t, ResponderConfig{SourceRate: 10, SourceBurst: 5})
	n := uint32(0)
	send := func(src netip.AddrPort, now time.Time) ReplyKind {
		t.Helper()
		n++
		in := p.initiator(t, n, 0, now)
		reply, err := p.r.HandleInitiation(nil, firstInit(t, in, now), src, now, LoadState{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return reply.Kind
	}
	var kinds []ReplyKind
	for range 10 {
		kinds = append(kinds, send(srcAddr, at(0)))
	}
	for i, k := range kinds {
		if want := map[bool]ReplyKind{true: ReplyResponse, false: ReplyCookie}[i < 5]; k != want {
			t.Fatalf("flood packet %d: kind %d, want %d (%v)", i, k, want, kinds)
		}
	}
	if k := send(otherAddr, at(0)); k != ReplyResponse {
		t.Fatal("quiet source rate limited")
	}
	// Same host, another port: still the same source.
	sameHost := srcAddr.Addr()
	if k := send(netip.AddrPortFrom(sameHost, 1), at(0)); k != ReplyCookie {
		t.Fatal("other port of the flooding host not limited")
	}
	// 100 ms later one token is back (10/s).
	if k := send(srcAddr, at(100*ms)); k != ReplyResponse {
		t.Fatal("bucket did not refill")
	}
	if k := send(srcAddr, at(100*ms)); k != ReplyCookie {
		t.Fatal("bucket refilled too much")
	}
}

// TestCookieCarriedOver: an initiator given the cookie an earlier handshake
// received (from the same address) passes a rate-limited responder at
// once; the cookie is not used once older than CookieLifetime, nor does an
// older cookie replace a newer one.
func TestCookieCarriedOver(t *testing.T) {
	p := newPair(t, ResponderConfig{SourceRate: 1, SourceBurst: 1})
	out := make([]byte, 0, 256)
	// Spend the source's burst.
	if r, err := p.r.HandleInitiation(out, firstInit(t, p.initiator(t, 1, 0, at(0)), at(0)), srcAddr, at(0), LoadState{}, 0); err != nil || r.Kind != ReplyResponse {
		t.Fatalf("first initiation: %v, kind %d", err, r.Kind)
	}
	// The next gets a cookie reply, which its initiator accepts.
	in := p.initiator(t, 2, 0, at(0))
	r, err := p.r.HandleInitiation(out, firstInit(t, in, at(0)), srcAddr, at(0), LoadState{}, 0)
	if err != nil || r.Kind != ReplyCookie {
		t.Fatalf("limited initiation: %v, kind %d", err, r.Kind)
	}
	if err := in.HandleCookieReply(r.Packet, at(0)); err != nil {
		t.Fatal(err)
	}
	c, ok := in.Cookie()
	if !ok {
		t.Fatal("no cookie after a valid cookie reply")
	}
	// A new initiator without the cookie is still limited; with it, it
	// gets a response, first initiation included.
	if r, _ := p.r.HandleInitiation(out, firstInit(t, p.initiator(t, 3, 0, at(ms)), at(ms)), srcAddr, at(ms), LoadState{}, 0); r.Kind != ReplyCookie {
		t.Fatalf("initiation without the cookie: kind %d, want a cookie reply", r.Kind)
	}
	with := p.initiator(t, 4, 0, at(2*ms))
	with.UseCookie(c, at(2*ms))
	if r, err := p.r.HandleInitiation(out, firstInit(t, with, at(2*ms)), srcAddr, at(2*ms), LoadState{}, 0); err != nil || r.Kind != ReplyResponse {
		t.Fatalf("initiation with the carried cookie: %v, kind %d, want a response", err, r.Kind)
	}
	// From another address the cookie is worth nothing.
	elsewhere := p.initiator(t, 5, 0, at(3*ms))
	elsewhere.UseCookie(c, at(3*ms))
	sameHost := netip.AddrPortFrom(srcAddr.Addr(), srcAddr.Port()+1)
	if r, _ := p.r.HandleInitiation(out, firstInit(t, elsewhere, at(3*ms)), sameHost, at(3*ms), LoadState{}, 0); r.Kind != ReplyCookie {
		t.Fatalf("cookie used from another port: kind %d, want a cookie reply", r.Kind)
	}
	// Too old: not used (its mac2 stays zero).
	late := at(DefaultCookieLifetime + time.Second)
	old := p.initiator(t, 6, 0, late)
	old.UseCookie(c, late)
	if _, ok := old.Cookie(); ok {
		t.Fatal("a cookie older than CookieLifetime was taken")
	}
	if pkt := firstInit(t, old, late); !isZero16(pkt[wire.InitMAC2Offset:wire.InitPacketLen]) {
		t.Fatal("an expired cookie produced a mac2")
	}
}
