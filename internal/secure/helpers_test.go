package secure

import (
	"bytes"
	mrand "math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// t0 is the fake clock's origin: every test time is t0 plus an offset.
var t0 = time.Unix(1_700_000_000, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

// seeded returns a deterministic random source.
func seeded(seed byte) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

// identityOf returns the identity whose private key is 32 bytes of v (the
// keys of docs/PROTOCOL.md §9: 0x49 initiator, 0x52 responder).
func identityOf(tb testing.TB, v byte) *Identity {
	tb.Helper()
	id, err := NewIdentity(wire.PrivateKey(bytes.Repeat([]byte{v}, 32)))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

var (
	srcAddr   = netip.MustParseAddrPort("192.0.2.1:40000")
	otherAddr = netip.MustParseAddrPort("[2001:db8::7]:5000")
)

// pair is an initiator identity, a responder and a fixed clock.
type pair struct {
	ini  *Identity
	resp *Identity
	r    *Responder
	rand *mrand.ChaCha8
}

func newPair(tb testing.TB, cfg ResponderConfig) *pair {
	tb.Helper()
	p := &pair{ini: identityOf(tb, 0x49), resp: identityOf(tb, 0x52), rand: seeded(1)}
	r, err := NewResponder(p.resp, cfg, seeded(2))
	if err != nil {
		tb.Fatal(err)
	}
	p.r = r
	return p
}

// initiator starts a handshake of p.ini towards p.resp at now.
func (p *pair) initiator(tb testing.TB, localEph, remoteEph uint32, now time.Time) *Initiator {
	tb.Helper()
	ini, err := NewInitiator(p.ini, p.resp.PublicKey(), localEph, remoteEph, DefaultParams(), HandshakeConfig{}, now, p.rand)
	if err != nil {
		tb.Fatal(err)
	}
	return ini
}

// firstInit returns a copy of the initiation Poll hands out at now.
func firstInit(tb testing.TB, ini *Initiator, now time.Time) []byte {
	tb.Helper()
	pkt, _, err := ini.Poll(now)
	if err != nil || pkt == nil {
		tb.Fatalf("Poll: %v, %d bytes", err, len(pkt))
	}
	return bytes.Clone(pkt)
}

// handshake runs a complete handshake at now and returns both sides.
func (p *pair) handshake(tb testing.TB, localEph, remoteEph uint32, now time.Time) (ini, resp *Established) {
	tb.Helper()
	in := p.initiator(tb, localEph, remoteEph, now)
	init := firstInit(tb, in, now)
	reply, err := p.r.HandleInitiation(nil, init, srcAddr, now, LoadState{}, 0x0badcafe)
	if err != nil || reply.Kind != ReplyResponse {
		tb.Fatalf("HandleInitiation: %v, kind %d", err, reply.Kind)
	}
	e, err := in.HandleResponse(reply.Packet, now)
	if err != nil {
		tb.Fatalf("HandleResponse: %v", err)
	}
	return e, reply.Session
}

// transports runs a handshake and builds both transports.
func (p *pair) transports(tb testing.TB, lim Limits, now time.Time) (ti, tr *Transport) {
	tb.Helper()
	ei, er := p.handshake(tb, 0x1b2c3d4e, 0, now)
	var err error
	if ti, err = NewTransport(ei, lim, now); err != nil {
		tb.Fatal(err)
	}
	if tr, err = NewTransport(er, lim, now); err != nil {
		tb.Fatal(err)
	}
	return ti, tr
}

// packet builds a plaintext transport packet from t's side, with capacity
// for the tag.
func packet(t *Transport, channel uint32, data string) []byte {
	h := wire.Header{Channel: channel, Destination: t.RemoteID(), Source: t.LocalID(), PacketNumber: t.NextPacketNumber()}
	b := h.Append(make([]byte, 0, wire.HeaderLen+wire.MsgHeaderLen+len(data)+wire.TagLen))
	s := wire.Stream{Data: []byte(data)}
	return s.Append(b)
}

// seal seals a fresh packet and returns a copy of it.
func seal(tb testing.TB, t *Transport, data string, now time.Time) ([]byte, uint64) {
	tb.Helper()
	out, pn, err := t.Seal(packet(t, 1, data), now)
	if err != nil {
		tb.Fatalf("Seal: %v", err)
	}
	return out, pn
}

// open opens a copy of pkt and returns the stream data, or the error.
func open(t *Transport, pkt []byte, now time.Time) (string, uint64, error) {
	plain, pn, err := t.Open(bytes.Clone(pkt), now)
	if err != nil {
		return "", 0, err
	}
	var s wire.Stream
	if err := s.Parse(plain[wire.HeaderLen:]); err != nil {
		return "", 0, err
	}
	return string(s.Data), pn, nil
}
