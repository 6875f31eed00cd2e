package secure

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// Header byte ranges whose changes pass every check made before the Noise
// read of an initiation: only the transcript can catch them.
const (
	offDstEph = wire.OffDestination + 4 // 20..23
	offSrcTag = wire.OffSource          // 24..27
	offSrcEph = wire.OffSource + 4      // 28..31
)

// headerDeltas are the changes tried on each header byte: the low bit, the
// high bit, and all bits.
var headerDeltas = [...]byte{0x01, 0x80, 0xff}

// eachHeaderChange calls f with a copy of pkt in which header byte off was
// XORed with delta, for every header byte but the two of the length field
// and every delta.
func eachHeaderChange(pkt []byte, f func(c []byte, off int, delta byte)) {
	for off := range wire.HeaderLen {
		if inLength(off) {
			continue
		}
		for _, d := range headerDeltas {
			c := bytes.Clone(pkt)
			c[off] ^= d
			f(c, off, d)
		}
	}
}

// TestInitiationHeaderInTranscript: an on-path attacker who rewrites any
// header byte of an initiation (the length field excepted) and recomputes
// mac1, and mac2 when the initiator holds a cookie, so that the anti-DoS
// checks pass, gets the initiation dropped. Bytes that no header check
// looks at, the ephemeral values and the source authentication tag, are
// dropped by the Noise read with ErrHandshakeAuth: the header is in the
// transcript. The readInitiation step alone rejects every change, whichever
// check would catch it first. The genuine initiation works afterwards.
func TestInitiationHeaderInTranscript(t *testing.T) {
	for _, withCookie := range []bool{false, true} {
		t.Run(fmt.Sprintf("cookie=%v", withCookie), func(t *testing.T) {
			p := newPair(t, unlimited)
			now := at(0)
			in := p.initiator(t, 0x1b2c3d4e, 0, now)
			init := firstInit(t, in, now)
			load := LoadState{}
			if withCookie {
				load.Overloaded = true
				reply, err := p.r.HandleInitiation(nil, init, srcAddr, now, load, 7)
				if err != nil || reply.Kind != ReplyCookie {
					t.Fatalf("no cookie reply under load: %v kind %d", err, reply.Kind)
				}
				if err := in.HandleCookieReply(reply.Packet, now); err != nil {
					t.Fatal(err)
				}
				now = at(2 * time.Second)
				pkt, _, err := in.Poll(now)
				if err != nil || pkt == nil || isZero16(pkt[wire.InitMAC2Offset:]) {
					t.Fatalf("retransmission without mac2: %v", err)
				}
				init = bytes.Clone(pkt)
			}
			checked := 0
			eachHeaderChange(init, func(c []byte, off int, d byte) {
				remac(c, p.resp.PublicKey(), wire.InitMAC1Offset)
				if withCookie {
					remac2(c, &in.cookie)
					if !p.r.jar.validMAC2(c, srcAddr) {
						t.Fatalf("byte %d ^ %#x: recomputed mac2 does not verify", off, d)
					}
				}
				if !p.r.id.verifyMAC1(c[:wire.InitMAC1Offset], c[wire.InitMAC1Offset:wire.InitMAC2Offset]) {
					t.Fatalf("byte %d ^ %#x: recomputed mac1 does not verify", off, d)
				}
				reply, err := p.r.HandleInitiation(nil, c, srcAddr, now, load, 7)
				if err == nil || reply.Kind != 0 || reply.Packet != nil || reply.Session != nil {
					t.Fatalf("byte %d ^ %#x: kind %d, %v", off, d, reply.Kind, err)
				}
				if off >= offDstEph && off < offSrcEph+4 && err != ErrHandshakeAuth {
					t.Fatalf("byte %d ^ %#x (ephemeral value or source tag): %v, want ErrHandshakeAuth", off, d, err)
				}
				if _, _, err := p.r.readInitiation(c, wire.SuiteChaChaPoly, nil, new(respWork)); err != ErrHandshakeAuth {
					t.Fatalf("byte %d ^ %#x: Noise read %v, want ErrHandshakeAuth", off, d, err)
				}
				checked++
			})
			if checked != (wire.HeaderLen-2)*len(headerDeltas) {
				t.Fatalf("checked %d changes", checked)
			}
			reply, err := p.r.HandleInitiation(nil, init, srcAddr, now, load, 7)
			if err != nil || reply.Kind != ReplyResponse {
				t.Fatalf("genuine initiation after the changes: %v kind %d", err, reply.Kind)
			}
			if _, err := in.HandleResponse(reply.Packet, now); err != nil {
				t.Fatalf("response to the genuine initiation: %v", err)
			}
		})
	}
}

// TestResponseHeaderInTranscript: the same for the response, with mac1
// recomputed (a response never carries mac2). The initiator checks both
// peer ids of a response against the ones it expects except the
// responder's ephemeral value, so only that value reaches the Noise read
// through HandleResponse (ErrHandshakeAuth); readResponse alone rejects
// every change. The initiator survives them all and completes the
// handshake with the genuine response (the failed reads undo their
// MixHash).
func TestResponseHeaderInTranscript(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	now := at(0)
	in := p.initiator(t, 0x1b2c3d4e, 0, now)
	reply, err := p.r.HandleInitiation(nil, firstInit(t, in, now), srcAddr, now, LoadState{}, 0x0badcafe)
	if err != nil || reply.Kind != ReplyResponse {
		t.Fatalf("%v kind %d", err, reply.Kind)
	}
	resp := bytes.Clone(reply.Packet)
	checked := 0
	eachHeaderChange(resp, func(c []byte, off int, d byte) {
		remac(c, p.ini.PublicKey(), wire.RespMAC1Offset)
		if !p.ini.verifyMAC1(c[:wire.RespMAC1Offset], c[wire.RespMAC1Offset:wire.RespMAC2Offset]) {
			t.Fatalf("byte %d ^ %#x: recomputed mac1 does not verify", off, d)
		}
		e, err := in.HandleResponse(bytes.Clone(c), now)
		if err == nil || e != nil {
			t.Fatalf("byte %d ^ %#x: accepted", off, d)
		}
		switch {
		case off >= offSrcEph && off < offSrcEph+4:
			if err != ErrHandshakeAuth {
				t.Fatalf("byte %d ^ %#x (source ephemeral): %v, want ErrHandshakeAuth", off, d, err)
			}
		case off >= wire.OffDestination && off < offSrcEph:
			if err != ErrAddressing {
				t.Fatalf("byte %d ^ %#x (peer ids): %v, want ErrAddressing", off, d, err)
			}
		}
		if _, err := in.readResponse(in.hs, c); err != ErrHandshakeAuth {
			t.Fatalf("byte %d ^ %#x: Noise read %v, want ErrHandshakeAuth", off, d, err)
		}
		checked++
	})
	if checked != (wire.HeaderLen-2)*len(headerDeltas) {
		t.Fatalf("checked %d changes", checked)
	}
	e, err := in.HandleResponse(resp, now)
	if err != nil {
		t.Fatalf("genuine response after the changes: %v", err)
	}
	ti, err := NewTransport(e, Limits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTransport(reply.Session, Limits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	pkt, _ := seal(t, ti, "after", now)
	if d, _, err := open(tr, pkt, now); err != nil || d != "after" {
		t.Fatalf("transport after the changes: %q %v", d, err)
	}
}

// withLength returns a copy of pkt in stream-transport form (PROTOCOL.md
// §8): the payload length field holds the bytes after the header.
func withLength(pkt []byte) []byte {
	return setLength(pkt, len(pkt)-wire.HeaderLen)
}

// setLength returns a copy of pkt with the payload length field set to n.
func setLength(pkt []byte, n int) []byte {
	c := bytes.Clone(pkt)
	wire.PutLength(c, uint16(n))
	return c
}

// TestStreamFormHandshake: a handshake whose initiation and response carry
// their stream-transport length (176 and 112) completes, and produces the
// same packets and keys as the datagram form: the two runs below use the
// same deterministic randomness, the responder answers the stream-form
// initiation with the very bytes it sends for the datagram form, and a
// packet sealed by one run's initiator opens with the other run's
// responder. Any other length value is accepted as well: checking it is
// the socket layer's job.
func TestStreamFormHandshake(t *testing.T) {
	now := at(0)
	run := func(lengths bool) (init, resp []byte, ti, tr *Transport) {
		p := newPair(t, ResponderConfig{})
		in := p.initiator(t, 0x1b2c3d4e, 0, now)
		init = firstInit(t, in, now)
		if lengths {
			init = withLength(init)
		}
		reply, err := p.r.HandleInitiation(nil, init, srcAddr, now, LoadState{}, 0x0badcafe)
		if err != nil || reply.Kind != ReplyResponse {
			t.Fatalf("lengths %v: HandleInitiation: %v kind %d", lengths, err, reply.Kind)
		}
		resp = reply.Packet
		if lengths {
			resp = withLength(resp)
		}
		e, err := in.HandleResponse(resp, now)
		if err != nil {
			t.Fatalf("lengths %v: HandleResponse: %v", lengths, err)
		}
		if ti, err = NewTransport(e, Limits{}, now); err != nil {
			t.Fatal(err)
		}
		if tr, err = NewTransport(reply.Session, Limits{}, now); err != nil {
			t.Fatal(err)
		}
		return init, resp, ti, tr
	}
	dInit, dResp, dti, dtr := run(false)
	sInit, sResp, sti, str := run(true)
	if l := wire.InitPacketLen - wire.HeaderLen; sInit[wire.OffLength] != byte(l) || sInit[wire.OffLength+1] != byte(l>>8) {
		t.Fatalf("stream-form initiation length field %x", sInit[wire.OffLength:wire.OffLength+2])
	}
	if !bytes.Equal(setLength(sInit, 0), dInit) || !bytes.Equal(setLength(sResp, 0), dResp) {
		t.Fatal("stream and datagram forms differ beyond the length field")
	}
	for _, c := range []struct {
		name   string
		tx, rx *Transport
	}{{"datagram initiator to stream responder", dti, str}, {"stream initiator to datagram responder", sti, dtr}} {
		pkt, _ := seal(t, c.tx, "cross", now)
		if d, _, err := open(c.rx, withLength(pkt), now); err != nil || d != "cross" {
			t.Fatalf("%s: %q %v", c.name, d, err)
		}
	}

	// Arbitrary length values on both messages.
	for _, n := range []int{1, 0x00ff, 0x1234, 0xffff} {
		p := newPair(t, ResponderConfig{})
		in := p.initiator(t, 0x1b2c3d4e, 0, now)
		reply, err := p.r.HandleInitiation(nil, setLength(firstInit(t, in, now), n), srcAddr, now, LoadState{}, 7)
		if err != nil || reply.Kind != ReplyResponse {
			t.Fatalf("initiation with length %#x: %v kind %d", n, err, reply.Kind)
		}
		if _, err := in.HandleResponse(setLength(reply.Packet, n), now); err != nil {
			t.Fatalf("response with length %#x: %v", n, err)
		}
	}
}

// TestStreamFormCookie: the cookie exchange in stream form. The cookie
// reply carries its length (64), the retransmitted initiation its length
// and a mac2 computed with the length field zero; the responder under load
// accepts it.
func TestStreamFormCookie(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	load := LoadState{Overloaded: true}
	in := p.initiator(t, 0x1b2c3d4e, 0, at(0))
	reply, err := p.r.HandleInitiation(nil, withLength(firstInit(t, in, at(0))), srcAddr, at(0), load, 7)
	if err != nil || reply.Kind != ReplyCookie {
		t.Fatalf("under load: %v kind %d", err, reply.Kind)
	}
	if err := in.HandleCookieReply(withLength(reply.Packet), at(0)); err != nil {
		t.Fatalf("stream-form cookie reply: %v", err)
	}
	now := at(2 * time.Second)
	init2, _, err := in.Poll(now)
	if err != nil || init2 == nil || isZero16(init2[wire.InitMAC2Offset:]) {
		t.Fatalf("retransmission without mac2: %v", err)
	}
	reply, err = p.r.HandleInitiation(nil, withLength(init2), srcAddr, now, load, 7)
	if err != nil || reply.Kind != ReplyResponse {
		t.Fatalf("stream-form initiation with mac2 under load: %v kind %d", err, reply.Kind)
	}
	if _, err := in.HandleResponse(withLength(reply.Packet), now); err != nil {
		t.Fatal(err)
	}
}

// TestTransportLengthExcluded: the length field is not part of the
// transport AEAD's associated data. Sealing the same packet with any
// length value gives the same bytes apart from the field itself, a packet
// opens whatever its length field says (including a value other than the
// one it was sealed with), and every other header byte stays
// authenticated.
func TestTransportLengthExcluded(t *testing.T) {
	key := bytes.Repeat([]byte{0x4b}, 32)
	plain := openStreamExample()
	want, err := hex.DecodeString(sealedOpenStream)
	if err != nil {
		t.Fatal(err)
	}
	lengths := []int{0, 1, len(want) - wire.HeaderLen, 0x1234, 0xffff}
	for _, n := range lengths {
		tx := transportWithKey(t, key, 1)
		buf := append(make([]byte, 0, len(plain)+wire.TagLen), setLength(plain, n)...)
		sealed, _, err := tx.Seal(buf, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sealed, setLength(want, n)) {
			t.Fatalf("sealed with length %#x:\n%x\nwant the example with that length\n%x", n, sealed, want)
		}
		for _, m := range lengths {
			rx := transportWithKey(t, key, 0)
			out, pn, err := rx.Open(setLength(sealed, m), t0)
			if err != nil || pn != 1 || !bytes.Equal(out, setLength(plain, m)) {
				t.Fatalf("sealed with length %#x, opened with %#x: %v pn %d\n%x", n, m, err, pn, out)
			}
		}
	}

	// A live session: every other header byte is authenticated.
	p := newPair(t, ResponderConfig{})
	now := at(0)
	ti, tr := p.transports(t, Limits{}, now)
	pkt, pn := seal(t, ti, "data", now)
	eachHeaderChange(pkt, func(c []byte, off int, d byte) {
		if _, _, err := tr.Open(c, now); err == nil {
			t.Fatalf("byte %d ^ %#x: opened", off, d)
		} else if off != wire.OffFlags && (off < wire.OffPacketNumber || off >= wire.HeaderLen) && err != ErrAuth {
			t.Fatalf("byte %d ^ %#x: %v, want ErrAuth", off, d, err)
		}
	})
	if d, got, err := open(tr, setLength(pkt, 0x0bad), now); err != nil || d != "data" || got != pn {
		t.Fatalf("changed length field: %q %d %v", d, got, err)
	}
	// The packet was accepted once: the replay window now refuses it,
	// whatever its length field says.
	if _, _, err := open(tr, pkt, now); err != ErrReplay {
		t.Fatalf("replay with the original length field: %v", err)
	}
}
