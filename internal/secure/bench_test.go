package secure

import (
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

const benchPacket = wire.DefaultPacketSize // 1452 bytes on the wire

// benchBuffer returns a plaintext transport packet of benchPacket-16 bytes
// with room for the tag.
func benchBuffer(t *Transport) []byte {
	b := packet(t, 1, "")
	b = append(b, make([]byte, benchPacket-wire.TagLen-len(b))...)
	return append(make([]byte, 0, benchPacket), b...)
}

func TestSealOpenAllocs(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	ti, tr := p.transports(t, Limits{}, at(0))
	if allocs := sealOpenAllocs(t, ti, tr); allocs != 0 {
		t.Fatalf("Seal+Open: %v allocations per packet, want 0", allocs)
	}
}

// sealOpenAllocs returns the allocations of one Seal and one Open of a
// full-size packet, ti sealing and tr opening.
func sealOpenAllocs(t *testing.T, ti, tr *Transport) float64 {
	buf := benchBuffer(ti)
	n := len(buf)
	return testing.AllocsPerRun(1000, func() {
		wire.PutPacketNumber(buf, ti.NextPacketNumber())
		sealed, _, err := ti.Seal(buf[:n], at(0))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := tr.Open(sealed, at(0)); err != nil {
			t.Fatal(err)
		}
	})
}

// handshakeAllocs is what one full handshake allocates, both sides,
// through the first transport packet each way (handshakeOnce): the
// Initiator and the responder's respWork (each holding its Noise
// HandshakeState and Established), the four transport AEAD objects, the
// two Transports, and the two keyed BLAKE2s states of the mac1s keyed by
// the peer (the initiator's towards the responder, the responder's on its
// response): x/crypto has no allocation-free keyed BLAKE2s. X25519,
// hashing and the handshake's AEAD operations allocate nothing, and an
// in-order replay window has no bitmap yet.
const handshakeAllocs = 10

// TestHandshakeAllocs pins the full handshake's allocations, with a margin
// of one.
func TestHandshakeAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("short or race mode (sync.Pool is randomised)")
	}
	run := handshakeOnce(t, productionPair(t))
	allocs := testing.AllocsPerRun(20, run)
	t.Logf("full handshake: %v allocations", allocs)
	if allocs > handshakeAllocs+1 {
		t.Fatalf("full handshake: %v allocations, want ≤ %d", allocs, handshakeAllocs+1)
	}
}

// TestIdentityAllocs: NewIdentity allocates only the Identity (the key
// pair is held by value, the public key computed without allocation).
func TestIdentityAllocs(t *testing.T) {
	priv := wire.PrivateKey{1, 2, 3}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := NewIdentity(priv); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Fatalf("NewIdentity: %v allocations, want 1", allocs)
	}
}

// unlimited is a responder configuration whose rate limit never triggers.
var unlimited = ResponderConfig{SourceRate: 1 << 30, SourceBurst: 1 << 30}

// productionPair is a pair whose responder uses crypto/rand, as in
// production (the Noise core then draws ephemeral keys itself).
func productionPair(tb testing.TB) *pair {
	p := newPair(tb, unlimited)
	r, err := NewResponder(p.resp, unlimited, nil)
	if err != nil {
		tb.Fatal(err)
	}
	p.r = r
	return p
}

// handshakeOnce returns a function that runs one full handshake: initiator
// Poll, responder HandleInitiation, initiator HandleResponse, both
// transports, and the first packet each way.
func handshakeOnce(tb testing.TB, p *pair) func() {
	out := make([]byte, 0, 256)
	buf := make([]byte, 0, 256)
	now := at(0)
	var eph uint32
	return func() {
		eph++
		now = now.Add(time.Millisecond)
		in, err := NewInitiator(p.ini, p.resp.PublicKey(), eph, 0, DefaultParams(), HandshakeConfig{}, now, nil)
		if err != nil {
			tb.Fatal(err)
		}
		init, _, err := in.Poll(now)
		if err != nil {
			tb.Fatal(err)
		}
		reply, err := p.r.HandleInitiation(out[:0], init, srcAddr, now, LoadState{}, eph)
		if err != nil {
			tb.Fatal(err)
		}
		e, err := in.HandleResponse(reply.Packet, now)
		if err != nil {
			tb.Fatalf("%v: kind %d, %d bytes", err, reply.Kind, len(reply.Packet))
		}
		ti, err := NewTransport(e, Limits{}, now)
		if err != nil {
			tb.Fatal(err)
		}
		tr, err := NewTransport(reply.Session, Limits{}, now)
		if err != nil {
			tb.Fatal(err)
		}
		h := wire.Header{Destination: ti.RemoteID(), Source: ti.LocalID()}
		pkt, _, err := ti.Seal((&wire.Ping{}).Append(h.Append(buf[:0])), now)
		if err != nil {
			tb.Fatal(err)
		}
		if _, _, err := tr.Open(pkt, now); err != nil {
			tb.Fatal(err)
		}
		h = wire.Header{Destination: tr.RemoteID(), Source: tr.LocalID()}
		if pkt, _, err = tr.Seal((&wire.Ping{}).Append(h.Append(buf[:0])), now); err != nil {
			tb.Fatal(err)
		}
		if _, _, err := ti.Open(pkt, now); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkHandshake: one full handshake, both sides, through the first
// transport packet each way (identities and responder long-lived).
func BenchmarkHandshake(b *testing.B) {
	run := handshakeOnce(b, productionPair(b))
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

// BenchmarkSeal seals full-size (1452-byte) packets in place.
func BenchmarkSeal(b *testing.B) {
	p := newPair(b, ResponderConfig{})
	ti, _ := p.transports(b, Limits{}, at(0))
	buf := benchBuffer(ti)
	n := len(buf)
	b.SetBytes(int64(n - wire.HeaderLen))
	b.ReportAllocs()
	for b.Loop() {
		wire.PutPacketNumber(buf, ti.NextPacketNumber())
		if _, _, err := ti.Seal(buf[:n], at(0)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealOpen seals and opens full-size packets in place: the cost
// of one packet on both ends, in each construction.
func BenchmarkSealOpen(b *testing.B) {
	b.Run("ChaCha20-Poly1305", func(b *testing.B) {
		p := newPair(b, ResponderConfig{})
		ti, tr := p.transports(b, Limits{}, at(0))
		benchSealOpen(b, ti, tr)
	})
	b.Run("AES-256-GCM", func(b *testing.B) {
		_, _, ei, er := aesPair(b, newPair(b, ResponderConfig{}))
		ti, tr := transportsOf(b, ei, er)
		benchSealOpen(b, ti, tr)
	})
}

func benchSealOpen(b *testing.B, ti, tr *Transport) {
	buf := benchBuffer(ti)
	n := len(buf)
	b.SetBytes(int64(n - wire.HeaderLen))
	b.ReportAllocs()
	for b.Loop() {
		wire.PutPacketNumber(buf, ti.NextPacketNumber())
		sealed, _, err := ti.Seal(buf[:n], at(0))
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := tr.Open(sealed, at(0)); err != nil {
			b.Fatal(err)
		}
	}
}
