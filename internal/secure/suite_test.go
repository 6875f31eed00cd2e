package secure

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/havenproto/haven/internal/doccheck"
	"github.com/havenproto/haven/internal/noise"
	"github.com/havenproto/haven/wire"
)

// aesPair runs a handshake of p in the AES-256-GCM construction and returns
// both sides' Established.
func aesPair(t testing.TB, p *pair) (init, reply []byte, ei, er *Established) {
	t.Helper()
	now := at(0)
	in, err := NewInitiator(p.ini, p.resp.PublicKey(), 0x1b2c3d4e, 0, DefaultParams(),
		HandshakeConfig{Suite: wire.SuiteAESGCM}, now, p.rand)
	if err != nil {
		t.Fatal(err)
	}
	init = firstInit(t, in, now)
	r, err := p.r.HandleInitiation(nil, init, srcAddr, now, LoadState{}, 0x0badcafe)
	if err != nil || r.Kind != ReplyResponse {
		t.Fatalf("HandleInitiation: %v, kind %d", err, r.Kind)
	}
	ei, err = in.HandleResponse(r.Packet, now)
	if err != nil {
		t.Fatalf("HandleResponse: %v", err)
	}
	return init, r.Packet, ei, r.Session
}

// TestSuiteAESGCM: a handshake and a session in the second construction
// (PROTOCOL.md §2.1) with the same responder that answers ChaCha20-Poly1305
// initiations: every packet carries the AES-GCM id and tags, the keys are
// AES-256-GCM, and nothing of one construction is accepted by the other.
func TestSuiteAESGCM(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	init, reply, ei, er := aesPair(t, p)
	for name, pkt := range map[string][]byte{"initiation": init, "response": reply} {
		var h wire.Header
		if err := h.Parse(pkt); err != nil || h.Suite != wire.SuiteAESGCM {
			t.Fatalf("%s: suite %v, %v", name, h.Suite, err)
		}
	}
	var h wire.Header
	_ = h.Parse(init)
	if h.Destination.Auth() != p.resp.AuthTagFor(wire.SuiteAESGCM) || h.Source.Auth() != p.ini.AuthTagFor(wire.SuiteAESGCM) ||
		p.resp.AuthTagFor(wire.SuiteAESGCM) == p.resp.AuthTag() {
		t.Fatalf("initiation peer ids %v → %v: not the AES-GCM tags", h.Source, h.Destination)
	}
	if ei.Suite != wire.SuiteAESGCM || er.Suite != wire.SuiteAESGCM || ei.RemoteID != er.LocalID {
		t.Fatalf("Established suites %v, %v", ei.Suite, er.Suite)
	}

	// The initiation does not complete as the other construction: the
	// prologue and the tags differ.
	foreign := bytes.Clone(init)
	copy(foreign, wire.ProtocolID[:])
	if _, err := p.r.HandleInitiation(nil, foreign, srcAddr, at(0), LoadState{}, 7); err == nil {
		t.Fatal("an AES-GCM initiation relabelled as ChaCha20-Poly1305 was answered")
	}

	ti, tr := transportsOf(t, ei, er)
	// packet builds a ChaCha20-Poly1305 header; Seal stamps the session's id.
	pkt, _ := seal(t, ti, "over AES-GCM", at(0))
	if s, ok := wire.SuiteOf(pkt); !ok || s != wire.SuiteAESGCM || ti.Suite() != wire.SuiteAESGCM {
		t.Fatalf("sealed packet starts % x", pkt[:8])
	}
	if d, _, err := open(tr, pkt, at(0)); err != nil || d != "over AES-GCM" {
		t.Fatalf("Open: %q, %v", d, err)
	}
	back, _ := seal(t, tr, "and back", at(0))
	if d, _, err := open(ti, back, at(0)); err != nil || d != "and back" {
		t.Fatalf("Open of the reply: %q, %v", d, err)
	}
	relabelled, _ := seal(t, ti, "x", at(0))
	copy(relabelled, wire.ProtocolID[:])
	if _, _, err := open(tr, relabelled, at(0)); err != ErrAuth {
		t.Fatalf("a packet with the other id: %v, want ErrAuth", err)
	}

	// A ChaCha20-Poly1305 session of the same peers stays what it is.
	ci, cr := p.handshake(t, 0x2b2c3d4e, 0, at(0))
	if ci.Suite != wire.SuiteChaChaPoly || cr.Suite != wire.SuiteChaChaPoly {
		t.Fatalf("default handshake made suites %v, %v", ci.Suite, cr.Suite)
	}
	if err := tr.Install(cr, at(0)); err != ErrSessionMismatch {
		t.Fatalf("keys of the other construction installed: %v", err)
	}
}

// TestSuiteResponseMismatch: an initiator drops a response or cookie reply
// in the other construction.
func TestSuiteResponseMismatch(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	in := p.initiator(t, 0x1b2c3d4e, 0, at(0))
	init := firstInit(t, in, at(0))
	r, err := p.r.HandleInitiation(nil, init, srcAddr, at(0), LoadState{}, 0x0badcafe)
	if err != nil {
		t.Fatal(err)
	}
	resp := bytes.Clone(r.Packet)
	copy(resp, wire.ProtocolIDAESGCM[:])
	if _, err := in.HandleResponse(resp, at(0)); err == nil {
		t.Fatal("a response relabelled as AES-GCM completed a ChaCha20-Poly1305 handshake")
	}
	if _, err := in.HandleResponse(r.Packet, at(0)); err != nil {
		t.Fatalf("the genuine response after the relabelled one: %v", err)
	}
	if _, err := NewInitiator(p.ini, p.resp.PublicKey(), 1, 0, DefaultParams(), HandshakeConfig{Suite: wire.NumSuites},
		at(0), nil); err == nil {
		t.Fatal("an unknown suite was accepted")
	}
}

// TestSuiteSealedExampleAESGCM: the Transport seals PROTOCOL.md §9.7, the
// packet of §9.2 under AES-256-GCM with the key 32 × 0x4b, byte for byte.
func TestSuiteSealedExampleAESGCM(t *testing.T) {
	key := bytes.Repeat([]byte{0x4b}, 32)
	tr := transportWithKey(t, key, 1)
	tr.suite = wire.SuiteAESGCM
	for _, cs := range []*noise.CipherState{&tr.sets[0].send, &tr.sets[0].recv} {
		*cs = noiseSuites[wire.SuiteAESGCM].NewCipherState()
		if err := cs.InitializeKey(key); err != nil {
			t.Fatal(err)
		}
	}
	ini, rsp := identityPub(0x49), identityPub(0x52)
	h := wire.Header{Channel: 1, Destination: wire.MakePeerID(wire.SuiteAESGCM.AuthTag(rsp), 0x0badcafe),
		Source: wire.MakePeerID(wire.SuiteAESGCM.AuthTag(ini), 0x1b2c3d4e), PacketNumber: 1}
	plain := openStreamExample()
	copy(plain, h.Append(nil))
	binary.LittleEndian.PutUint64(plain, binary.LittleEndian.Uint64(wire.ProtocolID[:])) // Seal stamps the id
	sealed, _, err := tr.Seal(plain, t0)
	if err != nil {
		t.Fatal(err)
	}
	dumps, err := doccheck.Dumps("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := dumps["open-stream-sealed-aesgcm"]; !bytes.Equal(sealed, want) {
		t.Fatalf("sealed\n%x\nwant §9.7\n%x", sealed, want)
	}
	tr.nextPN = 0
	opened, pn, err := tr.Open(bytes.Clone(sealed), t0)
	if err != nil || pn != 1 || !bytes.Equal(opened[wire.HeaderLen:], openStreamExample()[wire.HeaderLen:]) {
		t.Fatalf("Open of §9.7: pn %d, %v", pn, err)
	}
}

// TestSealOpenAllocsAESGCM: the AES-256-GCM transport, like the
// ChaCha20-Poly1305 one (TestSealOpenAllocs), allocates nothing per packet.
func TestSealOpenAllocsAESGCM(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	_, _, ei, er := aesPair(t, p)
	ti, tr := transportsOf(t, ei, er)
	if allocs := sealOpenAllocs(t, ti, tr); allocs != 0 {
		t.Fatalf("Seal+Open under AES-256-GCM: %v allocations per packet, want 0", allocs)
	}
}

// transportsOf builds the transports of a handshake's two sides.
func transportsOf(tb testing.TB, ei, er *Established) (ti, tr *Transport) {
	tb.Helper()
	var err error
	if ti, err = NewTransport(ei, Limits{}, at(0)); err != nil {
		tb.Fatal(err)
	}
	if tr, err = NewTransport(er, Limits{}, at(0)); err != nil {
		tb.Fatal(err)
	}
	return ti, tr
}
