package secure

import (
	"bytes"
	"errors"
	"testing"

	"github.com/havenproto/haven/wire"
)

// gate is a switchable Authorize function that records what it was asked.
type gate struct {
	allow bool
	asked []wire.PublicKey
}

func (g *gate) authorize(k wire.PublicKey) bool {
	g.asked = append(g.asked, k)
	return g.allow
}

// TestAuthorizeRefusedSilently: a refused initiator gets no reply and
// leaves no timestamp behind, so the very same initiation is answered once
// its key is admitted; Authorize is asked about the initiator's static key.
func TestAuthorizeRefusedSilently(t *testing.T) {
	g := &gate{}
	p := newPair(t, ResponderConfig{Authorize: g.authorize})
	in := p.initiator(t, 0x1b2c3d4e, 0, at(0))
	init := firstInit(t, in, at(0))

	reply, err := p.r.HandleInitiation(nil, init, srcAddr, at(0), LoadState{}, 7)
	if !errors.Is(err, ErrUnauthorized) || reply.Kind != 0 || reply.Packet != nil || reply.Session != nil {
		t.Fatalf("refused initiation: %v, kind %d, %d bytes", err, reply.Kind, len(reply.Packet))
	}
	if len(g.asked) != 1 || g.asked[0] != p.ini.PublicKey() {
		t.Fatalf("Authorize asked about %v, want once about the initiator's key", g.asked)
	}
	g.allow = true
	reply, err = p.r.HandleInitiation(nil, init, srcAddr, at(0), LoadState{}, 7)
	if err != nil || reply.Kind != ReplyResponse {
		t.Fatalf("the refused initiation, once admitted: %v, kind %d (its timestamp was recorded?)", err, reply.Kind)
	}
	if _, err := in.HandleResponse(reply.Packet, at(0)); err != nil {
		t.Fatal(err)
	}
	// Authorization does not bypass replay protection.
	if _, err := p.r.HandleInitiation(nil, init, srcAddr, at(0), LoadState{}, 7); err != ErrReplayedInitiation {
		t.Fatalf("replay of an admitted initiation: %v", err)
	}
}

// TestAuthorizeNotAskedBeforeAuthentication: forged initiations and the
// cookie path (mac1 only, before any Diffie-Hellman work) never reach
// Authorize. Under load a refused key is sent a cookie reply, like any
// sender that knows the responder's public key, and its retry with the
// cookie gets silence.
func TestAuthorizeNotAskedBeforeAuthentication(t *testing.T) {
	g := &gate{}
	p := newPair(t, ResponderConfig{Authorize: g.authorize})
	load := LoadState{Overloaded: true}
	in := p.initiator(t, 0x1b2c3d4e, 0, at(0))
	init := firstInit(t, in, at(0))

	forged := remac(flip(init, (wire.InitMAC1Offset-20)*8), p.resp.PublicKey(), wire.InitMAC1Offset)
	if _, err := p.r.HandleInitiation(nil, forged, srcAddr, at(0), LoadState{}, 7); err != ErrHandshakeAuth {
		t.Fatalf("forged initiation: %v", err)
	}
	reply, err := p.r.HandleInitiation(nil, init, srcAddr, at(0), load, 7)
	if err != nil || reply.Kind != ReplyCookie {
		t.Fatalf("refused key under load: %v, kind %d; want a cookie reply", err, reply.Kind)
	}
	if len(g.asked) != 0 {
		t.Fatalf("Authorize asked %d times before an initiation authenticated", len(g.asked))
	}
	if err := in.HandleCookieReply(bytes.Clone(reply.Packet), at(ms)); err != nil {
		t.Fatal(err)
	}
	retry, _, err := in.Poll(at(ms))
	if err != nil || retry == nil {
		t.Fatalf("retry after the cookie: %v", err)
	}
	reply, err = p.r.HandleInitiation(nil, bytes.Clone(retry), srcAddr, at(ms), load, 7)
	if !errors.Is(err, ErrUnauthorized) || reply.Packet != nil {
		t.Fatalf("refused key with a valid mac2: %v, %d bytes", err, len(reply.Packet))
	}
	if len(g.asked) != 1 {
		t.Fatalf("Authorize asked %d times, want 1", len(g.asked))
	}
}

// TestAuthorizeRateLimitCost: a refused initiation takes one token from
// its source's bucket, exactly as an initiation that fails authentication
// does, no more.
func TestAuthorizeRateLimitCost(t *testing.T) {
	const burst = 3
	for _, refused := range []bool{true, false} {
		g := &gate{}
		p := newPair(t, ResponderConfig{Authorize: g.authorize, SourceRate: 1, SourceBurst: burst})
		n := uint32(0)
		next := func() []byte {
			n++
			return firstInit(t, p.initiator(t, n, 0, at(0)), at(0))
		}
		for range burst - 1 {
			pkt, want := next(), ErrUnauthorized
			if !refused {
				g.allow = true
				pkt = remac(flip(pkt, (wire.InitMAC1Offset-20)*8), p.resp.PublicKey(), wire.InitMAC1Offset)
				want = ErrHandshakeAuth
			}
			if _, err := p.r.HandleInitiation(nil, pkt, srcAddr, at(0), LoadState{}, 0); err != want {
				t.Fatalf("refused %v: %v, want %v", refused, err, want)
			}
		}
		g.allow = true
		if r, err := p.r.HandleInitiation(nil, next(), srcAddr, at(0), LoadState{}, 0); err != nil || r.Kind != ReplyResponse {
			t.Fatalf("refused %v: the last token: %v, kind %d", refused, err, r.Kind)
		}
		if r, err := p.r.HandleInitiation(nil, next(), srcAddr, at(0), LoadState{}, 0); err != nil || r.Kind != ReplyCookie {
			t.Fatalf("refused %v: past the burst: %v, kind %d; want a cookie reply", refused, err, r.Kind)
		}
	}
}

// TestAuthorizeRekey: a rekey initiation is asked about too, so a session
// whose peer is no longer admitted gets no new keys.
func TestAuthorizeRekey(t *testing.T) {
	g := &gate{allow: true}
	p := newPair(t, ResponderConfig{Authorize: g.authorize})
	ti, _ := p.transports(t, Limits{}, at(0))
	g.allow = false
	in, err := NewInitiator(p.ini, p.resp.PublicKey(), ti.LocalID().Ephemeral(), ti.RemoteID().Ephemeral(),
		DefaultParams(), HandshakeConfig{}, at(ms), seeded(9))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.r.HandleInitiation(nil, firstInit(t, in, at(ms)), srcAddr, at(ms), LoadState{}, 0); err != ErrUnauthorized {
		t.Fatalf("rekey of a refused peer: %v", err)
	}
}

// TestAuthorizeInitiator: an initiator whose Authorize refuses the
// responder builds nothing and fails with ErrUnauthorized.
func TestAuthorizeInitiator(t *testing.T) {
	ini, resp := identityOf(t, 0x49), identityOf(t, 0x52)
	g := &gate{}
	cfg := HandshakeConfig{Authorize: g.authorize}
	in, err := NewInitiator(ini, resp.PublicKey(), 1, 0, DefaultParams(), cfg, at(0), seeded(1))
	if in != nil || err != ErrUnauthorized {
		t.Fatalf("refused responder: %v, %v", in, err)
	}
	if len(g.asked) != 1 || g.asked[0] != resp.PublicKey() {
		t.Fatalf("Authorize asked about %v, want the responder's key", g.asked)
	}
	g.allow = true
	if _, err := NewInitiator(ini, resp.PublicKey(), 1, 0, DefaultParams(), cfg, at(0), seeded(1)); err != nil {
		t.Fatalf("admitted responder: %v", err)
	}
}
