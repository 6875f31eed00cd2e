package secure

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

func TestHandshakeAndTransport(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	now := at(0)
	in := p.initiator(t, 0x1b2c3d4e, 0, now)
	init := firstInit(t, in, now)
	if len(init) != wire.InitPacketLen {
		t.Fatalf("initiation is %d bytes", len(init))
	}
	var h wire.Header
	if err := h.Parse(init); err != nil || h.Flags != wire.FlagHandshake ||
		h.Destination != wire.MakePeerID(p.resp.AuthTag(), 0) ||
		h.Source != wire.MakePeerID(p.ini.AuthTag(), 0x1b2c3d4e) {
		t.Fatalf("initiation header %+v, %v", h, err)
	}

	reply, err := p.r.HandleInitiation(make([]byte, 0, 2048), init, srcAddr, now, LoadState{}, 0x0badcafe)
	if err != nil || reply.Kind != ReplyResponse || len(reply.Packet) != wire.ResponsePacketLen {
		t.Fatalf("HandleInitiation: %v, kind %d, %d bytes", err, reply.Kind, len(reply.Packet))
	}
	er := reply.Session
	if er.Initiator || er.Rekey || er.Peer != p.ini.PublicKey() ||
		er.LocalID != wire.MakePeerID(p.resp.AuthTag(), 0x0badcafe) ||
		er.RemoteID != wire.MakePeerID(p.ini.AuthTag(), 0x1b2c3d4e) {
		t.Fatalf("responder's Established: %+v", er)
	}
	if err := h.Parse(reply.Packet); err != nil || h.Destination != er.RemoteID || h.Source != er.LocalID {
		t.Fatalf("response header %+v, %v", h, err)
	}

	ei, err := in.HandleResponse(reply.Packet, now)
	if err != nil {
		t.Fatal(err)
	}
	if !ei.Initiator || ei.Peer != p.resp.PublicKey() || ei.LocalID != er.RemoteID || ei.RemoteID != er.LocalID ||
		ei.PeerParams != er.LocalParams || ei.LocalParams != er.PeerParams || ei.Align() != 8 || ei.FEC() != wire.FECNone {
		t.Fatalf("initiator's Established: %+v\nresponder's: %+v", ei, er)
	}
	if pkt, dl, err := in.Poll(now.Add(time.Hour)); pkt != nil || !dl.IsZero() || err != nil {
		t.Fatalf("Poll after completion: %d bytes, %v, %v", len(pkt), dl, err)
	}
	if _, err := in.HandleResponse(reply.Packet, now); err != ErrUnexpected {
		t.Fatalf("second response: %v", err)
	}

	ti, err := NewTransport(ei, Limits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTransport(er, Limits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTransport(er, Limits{}, now); err != ErrUsed {
		t.Fatalf("Established used twice: %v", err)
	}
	// Key confirmation: the responder may not send first.
	if _, _, err := tr.Seal(packet(tr, 1, "too early"), now); err != ErrNotConfirmed {
		t.Fatalf("responder Seal before confirmation: %v", err)
	}
	for i := range 3 {
		pkt, pn := seal(t, ti, "ping", now)
		if pn != uint64(i) {
			t.Fatalf("pn %d, want %d", pn, i)
		}
		if d, got, err := open(tr, pkt, now); err != nil || d != "ping" || got != pn {
			t.Fatalf("responder Open: %q %d %v", d, got, err)
		}
	}
	pkt, _ := seal(t, tr, "pong", now)
	if d, _, err := open(ti, pkt, now); err != nil || d != "pong" {
		t.Fatalf("initiator Open: %q %v", d, err)
	}
	// Any bit changed anywhere fails.
	for i := range len(pkt) * 8 {
		c := bytes.Clone(pkt)
		c[i/8] ^= 1 << (i % 8)
		if _, _, err := ti.Open(c, now); err == nil {
			t.Fatalf("flipped bit %d opened", i)
		}
	}
}

func TestAlignmentDecision(t *testing.T) {
	for _, tc := range []struct {
		supported, proposed, want uint8
	}{
		{0, 0, 0}, {0, 4, 4}, {0, 3, 3},
		{1 << 2, 4, 3}, {1 << 4, 4, 4}, {1 << 4, 1, 3}, {1 << 0, 0, 0},
	} {
		p := newPair(t, ResponderConfig{Alignments: tc.supported})
		params := DefaultParams()
		params.AlignLog2 = tc.proposed
		params.MaxChannels = 7
		in, err := NewInitiator(p.ini, p.resp.PublicKey(), 1, 0, params, HandshakeConfig{}, at(0), p.rand)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := p.r.HandleInitiation(nil, firstInit(t, in, at(0)), srcAddr, at(0), LoadState{}, 2)
		if err != nil {
			t.Fatal(err)
		}
		ei, err := in.HandleResponse(reply.Packet, at(0))
		if err != nil {
			t.Fatal(err)
		}
		er := reply.Session
		if ei.LocalParams.AlignLog2 != tc.want || ei.PeerParams.AlignLog2 != tc.want ||
			er.LocalParams.AlignLog2 != tc.want || er.PeerParams.AlignLog2 != tc.want {
			t.Errorf("supported %#x proposed %d: got %+v / %+v, want %d", tc.supported, tc.proposed, ei, er, tc.want)
		}
		if er.PeerParams.MaxChannels != 7 || ei.LocalParams.MaxChannels != 7 ||
			ei.PeerParams.MaxChannels != DefaultParams().MaxChannels {
			t.Errorf("params not exchanged: %+v / %+v", ei, er)
		}
	}
}

// forgeResponse answers init as p.r would, but with the given response
// payload (a broken responder).
func forgeResponse(tb testing.TB, p *pair, init []byte, rp wire.RespPayload) []byte {
	tb.Helper()
	hs, _, err := p.r.readInitiation(init, wire.SuiteChaChaPoly, nil, new(respWork))
	if err != nil {
		tb.Fatal(err)
	}
	var h wire.Header
	if err := h.Parse(init); err != nil {
		tb.Fatal(err)
	}
	rh := wire.Header{Flags: wire.FlagHandshake, Destination: h.Source, Source: wire.MakePeerID(p.resp.AuthTag(), 9)}
	b, err := appendResponse(nil, hs, &rh, &rp, p.ini.PublicKey(), new(respWork))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// A responder that decides an alignment the initiator did not offer (and
// that is not the fallback 8) ends the handshake with ErrBadParams; the
// fallback itself is accepted.
func TestResponderBadDecision(t *testing.T) {
	for _, tc := range []struct {
		decided uint8
		want    error
	}{{2, ErrBadParams}, {3, nil}, {4, nil}} {
		p := newPair(t, ResponderConfig{})
		params := DefaultParams()
		params.AlignLog2 = 4
		in, err := NewInitiator(p.ini, p.resp.PublicKey(), 1, 0, params, HandshakeConfig{}, at(0), p.rand)
		if err != nil {
			t.Fatal(err)
		}
		init := firstInit(t, in, at(0))
		rp := DefaultParams()
		rp.AlignLog2 = tc.decided
		_, err = in.HandleResponse(forgeResponse(t, p, init, wire.RespPayload{Params: rp}), at(0))
		if err != tc.want {
			t.Fatalf("decided %d: %v, want %v", tc.decided, err, tc.want)
		}
		if tc.want != nil {
			if _, _, err := in.Poll(at(time.Second)); err != ErrBadParams {
				t.Fatalf("Poll after a bad decision: %v", err)
			}
		}
	}
	if decideAlign(4, 1<<1) != 3 || decideAlign(9, 0x1f) != 3 || decideAlign(1, 1<<1) != 1 {
		t.Fatal("decideAlign")
	}
}

func TestConstructorsReject(t *testing.T) {
	if _, err := NewIdentity(wire.PrivateKey{}); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
	id := identityOf(t, 0x49)
	peer := identityOf(t, 0x52).PublicKey()
	bad := DefaultParams()
	bad.MaxPacketSize = 100
	for _, c := range []struct {
		peer     wire.PublicKey
		localEph uint32
		params   wire.SessionParams
	}{{wire.PublicKey{}, 1, DefaultParams()}, {peer, 0, DefaultParams()}, {peer, 1, bad}} {
		if _, err := NewInitiator(id, c.peer, c.localEph, 0, c.params, HandshakeConfig{}, at(0), nil); !errors.Is(err, ErrConfig) {
			t.Errorf("NewInitiator(%+v): %v", c, err)
		}
	}
	if _, err := NewResponder(nil, ResponderConfig{}, nil); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
	if _, err := NewResponder(id, ResponderConfig{Params: bad}, nil); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
}

// TestTimestampsIncrease: two initiations built at the same clock reading
// still carry strictly increasing timestamps, so both are accepted.
func TestTimestampsIncrease(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	for i := range 3 {
		in := p.initiator(t, uint32(i+1), 0, at(0))
		if _, err := p.r.HandleInitiation(nil, firstInit(t, in, at(0)), srcAddr, at(0), LoadState{}, 0); err != nil {
			t.Fatalf("initiation %d: %v", i, err)
		}
	}
}

// TestResponderConcurrent: HandleInitiation from many goroutines (run with
// -race).
func TestResponderConcurrent(t *testing.T) {
	p := newPair(t, ResponderConfig{SourceBurst: 1000})
	const n = 8
	inits := make([][]byte, n)
	inis := make([]*Initiator, n)
	for i := range n {
		id := identityOf(t, byte(0x60+i))
		in, err := NewInitiator(id, p.resp.PublicKey(), uint32(i+1), 0, DefaultParams(), HandshakeConfig{}, at(0), nil)
		if err != nil {
			t.Fatal(err)
		}
		inis[i], inits[i] = in, firstInit(t, in, at(0))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply, err := p.r.HandleInitiation(nil, inits[i], srcAddr, at(0), LoadState{}, 0)
			if err == nil {
				_, err = inis[i].HandleResponse(reply.Packet, at(0))
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("handshake %d: %v", i, err)
		}
	}
}

// The initiation's service hint is answered in the response: served when
// the responder's Serves says so, not served otherwise, and an answer to a
// hint that was never sent ends the handshake (a broken responder).
func TestServiceHint(t *testing.T) {
	echo := wire.ServiceHint("echo")
	for _, tc := range []struct {
		name   string
		hint   uint32
		serves func(uint32) bool
		want   bool
	}{
		{"served", echo, func(h uint32) bool { return h == echo }, true},
		{"not served", echo, func(h uint32) bool { return h == wire.ServiceHint("other") }, false},
		{"no Serves", echo, nil, false},
		{"no hint", 0, func(uint32) bool { t.Error("Serves asked without a hint"); return true }, false},
	} {
		p := newPair(t, ResponderConfig{Serves: tc.serves})
		in, err := NewInitiator(p.ini, p.resp.PublicKey(), 1, 0, DefaultParams(), HandshakeConfig{ServiceHint: tc.hint},
			at(0), p.rand)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := p.r.HandleInitiation(nil, firstInit(t, in, at(0)), srcAddr, at(0), LoadState{}, 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if reply.Session.ServiceServed {
			t.Errorf("%s: the responder's side reports an answer", tc.name)
		}
		e, err := in.HandleResponse(reply.Packet, at(0))
		if err != nil || e.ServiceServed != tc.want {
			t.Errorf("%s: served %v, %v; want %v", tc.name, e != nil && e.ServiceServed, err, tc.want)
		}
	}

	p := newPair(t, ResponderConfig{})
	in, err := NewInitiator(p.ini, p.resp.PublicKey(), 1, 0, DefaultParams(), HandshakeConfig{}, at(0), p.rand)
	if err != nil {
		t.Fatal(err)
	}
	forged := forgeResponse(t, p, firstInit(t, in, at(0)), wire.RespPayload{Params: DefaultParams(), Flags: wire.RespServiceServed})
	if _, err := in.HandleResponse(forged, at(0)); err != ErrBadParams {
		t.Fatalf("an answer to no hint: %v, want ErrBadParams", err)
	}
}
