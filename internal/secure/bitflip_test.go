package secure

import (
	"bytes"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// flip returns a copy of b with bit i flipped.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i/8] ^= 1 << (i % 8)
	return c
}

// remac recomputes the mac1 of a handshake packet (anyone who knows the
// receiver's public key can).
func remac(b []byte, receiver wire.PublicKey, mac1Off int) []byte {
	key := deriveKey(labelMAC1, receiver)
	var mac [wire.MACLen]byte
	oneMAC(&mac, key[:], b[:mac1Off], new(keyedMAC))
	copy(b[mac1Off:], mac[:])
	return b
}

// remac2 recomputes the mac2 of an initiation with cookie (the initiator
// that holds the cookie can).
func remac2(b []byte, cookie *[wire.MACLen]byte) []byte {
	var mac [wire.MACLen]byte
	oneMAC(&mac, cookie[:], b[:wire.InitMAC2Offset], new(keyedMAC))
	copy(b[wire.InitMAC2Offset:], mac[:])
	return b
}

// inLength reports whether byte off of a packet is in the header's payload
// length field, which no cryptography covers: changing it changes nothing
// (TestStreamFormHandshake, TestTransportLengthExcluded), so the bit-flip
// tests skip it.
func inLength(off int) bool { return off == wire.OffLength || off == wire.OffLength+1 }

// field names the byte ranges of a handshake packet for error messages.
func field(off int, fields []struct {
	name string
	end  int
}) string {
	for _, f := range fields {
		if off < f.end {
			return f.name
		}
	}
	return "?"
}

var initFields = []struct {
	name string
	end  int
}{
	{"header", wire.HeaderLen}, {"message header", 48}, {"ephemeral", 80}, {"static", 128},
	{"payload", 184}, {"mac1", 200}, {"mac2", 216},
}

var respFields = []struct {
	name string
	end  int
}{
	{"header", wire.HeaderLen}, {"message header", 48}, {"ephemeral", 80}, {"payload", 120},
	{"mac1", 136}, {"mac2", 152},
}

// TestInitiationBitFlips flips every bit of an initiation before mac2,
// except the length field: each copy is dropped without a reply. mac2 is checked only under load
// (TestInitiationBitFlipsWithCookie).
func TestInitiationBitFlips(t *testing.T) {
	p := newPair(t, ResponderConfig{SourceBurst: 1 << 20})
	now := at(0)
	init := firstInit(t, p.initiator(t, 0x1b2c3d4e, 0, now), now)
	for i := range wire.InitMAC2Offset * 8 {
		if inLength(i / 8) {
			continue
		}
		reply, err := p.r.HandleInitiation(nil, flip(init, i), srcAddr, now, LoadState{}, 7)
		if err == nil || reply.Kind != 0 || reply.Packet != nil {
			t.Fatalf("bit %d (%s) flipped: kind %d, %v", i, field(i/8, initFields), reply.Kind, err)
		}
	}
	// An attacker who knows the responder's public key can recompute mac1;
	// then the Noise message itself must catch every flip of its fields.
	for i := 48 * 8; i < wire.InitMAC1Offset*8; i++ {
		c := remac(flip(init, i), p.resp.PublicKey(), wire.InitMAC1Offset)
		if reply, err := p.r.HandleInitiation(nil, c, srcAddr, now, LoadState{}, 7); err == nil {
			t.Fatalf("bit %d (%s) flipped with mac1 recomputed: kind %d accepted", i, field(i/8, initFields), reply.Kind)
		}
	}
	if reply, err := p.r.HandleInitiation(nil, init, srcAddr, now, LoadState{}, 7); err != nil || reply.Kind != ReplyResponse {
		t.Fatalf("genuine initiation after the flips: %v", err)
	}
}

// TestInitiationBitFlipsWithCookie: under load, with a cookie in use, every
// flipped bit of the whole initiation, mac2 included (the length field
// excepted), fails to get a response (a changed mac2 gets a new cookie reply at most).
func TestInitiationBitFlipsWithCookie(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	in := p.initiator(t, 0x1b2c3d4e, 0, at(0))
	load := LoadState{Overloaded: true}
	reply, err := p.r.HandleInitiation(nil, firstInit(t, in, at(0)), srcAddr, at(0), load, 7)
	if err != nil || reply.Kind != ReplyCookie {
		t.Fatalf("no cookie reply under load: %v %d", err, reply.Kind)
	}
	if err := in.HandleCookieReply(reply.Packet, at(0)); err != nil {
		t.Fatal(err)
	}
	now := at(2 * time.Second)
	init2, _, err := in.Poll(now)
	if err != nil || init2 == nil || isZero16(init2[wire.InitMAC2Offset:]) {
		t.Fatalf("retransmission without mac2: %v", err)
	}
	init2 = bytes.Clone(init2)
	for i := range wire.InitPacketLen * 8 {
		if inLength(i / 8) {
			continue
		}
		reply, err := p.r.HandleInitiation(nil, flip(init2, i), srcAddr, now, load, 7)
		if reply.Kind == ReplyResponse || reply.Session != nil {
			t.Fatalf("bit %d (%s) flipped: got a response", i, field(i/8, initFields))
		}
		if err == nil && (i < wire.InitMAC2Offset*8 || reply.Kind != ReplyCookie) {
			t.Fatalf("bit %d (%s) flipped: kind %d, no error", i, field(i/8, initFields), reply.Kind)
		}
	}
	reply, err = p.r.HandleInitiation(nil, init2, srcAddr, now, load, 7)
	if err != nil || reply.Kind != ReplyResponse {
		t.Fatalf("genuine initiation with cookie: %v kind %d", err, reply.Kind)
	}
	if _, err := in.HandleResponse(reply.Packet, now); err != nil {
		t.Fatal(err)
	}
}

// TestResponseBitFlips flips every bit of a response but the length field:
// the initiator rejects each copy, stays unchanged, and then completes with the genuine one.
func TestResponseBitFlips(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	now := at(0)
	in := p.initiator(t, 0x1b2c3d4e, 0, now)
	reply, err := p.r.HandleInitiation(nil, firstInit(t, in, now), srcAddr, now, LoadState{}, 7)
	if err != nil {
		t.Fatal(err)
	}
	resp := reply.Packet
	for i := range len(resp) * 8 {
		if inLength(i / 8) {
			continue
		}
		if e, err := in.HandleResponse(flip(resp, i), now); err == nil || e != nil {
			t.Fatalf("bit %d (%s) flipped: accepted", i, field(i/8, respFields))
		}
	}
	for i := 48 * 8; i < wire.RespMAC1Offset*8; i++ {
		c := remac(flip(resp, i), p.ini.PublicKey(), wire.RespMAC1Offset)
		if _, err := in.HandleResponse(c, now); err != ErrHandshakeAuth {
			t.Fatalf("bit %d (%s) flipped with mac1 recomputed: %v", i, field(i/8, respFields), err)
		}
	}
	if _, err := in.HandleResponse(resp, now); err != nil {
		t.Fatalf("genuine response after the flips: %v", err)
	}
}

// TestCookieReplyBitFlips flips every bit of a cookie reply but the length
// field: each copy is rejected and the genuine reply is accepted afterwards.
func TestCookieReplyBitFlips(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	in := p.initiator(t, 0x1b2c3d4e, 0, at(0))
	reply, err := p.r.HandleInitiation(nil, firstInit(t, in, at(0)), srcAddr, at(0), LoadState{Overloaded: true}, 7)
	if err != nil || reply.Kind != ReplyCookie || len(reply.Packet) != wire.CookiePacketLen {
		t.Fatalf("%v %d", err, reply.Kind)
	}
	for i := range wire.CookiePacketLen * 8 {
		if inLength(i / 8) {
			continue
		}
		if err := in.HandleCookieReply(flip(reply.Packet, i), at(0)); err == nil {
			t.Fatalf("bit %d flipped: accepted", i)
		}
	}
	if in.haveCookie {
		t.Fatal("a flipped cookie reply was stored")
	}
	if err := in.HandleCookieReply(reply.Packet, at(0)); err != nil {
		t.Fatal(err)
	}
	if err := in.HandleCookieReply(reply.Packet, at(0)); err != ErrUnexpected {
		t.Fatalf("second cookie reply for one initiation: %v", err)
	}
}
