package secure

import (
	"bytes"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// TestResponderNeverAmplifies sends one source a mix of valid, replayed,
// corrupted and junk initiations, with and without load: every reply is
// smaller than the packet that caused it, and the total sent back never
// exceeds the total received.
func TestResponderNeverAmplifies(t *testing.T) {
	p := newPair(t, ResponderConfig{SourceBurst: 3})
	rnd := seeded(11)
	var in, out int
	var lastValid []byte
	for i := range 200 {
		now := at(time.Duration(i) * 10 * ms)
		var pkt []byte
		switch i % 6 {
		case 0, 1: // valid (rate-limited after the burst)
			pkt = firstInit(t, p.initiator(t, uint32(i+1), 0, now), now)
			lastValid = pkt
		case 2: // replay
			if lastValid == nil {
				continue
			}
			pkt = lastValid
		case 3: // bad mac1
			pkt = flip(firstInit(t, p.initiator(t, uint32(i+1), 0, now), now), 190*8)
		case 4: // junk of a random size
			pkt = make([]byte, rnd.Uint64()%1500)
			rnd.Read(pkt)
		case 5: // a valid initiation cut short or padded
			v := firstInit(t, p.initiator(t, uint32(i+1), 0, now), now)
			if i%2 == 0 {
				pkt = v[:len(v)-1]
			} else {
				pkt = append(bytes.Clone(v), 0)
			}
		}
		load := LoadState{Overloaded: i%4 == 3}
		in += len(pkt)
		reply, err := p.r.HandleInitiation(nil, pkt, srcAddr, now, load, 0)
		if (err == nil) != (reply.Packet != nil) {
			t.Fatalf("packet %d: error %v with a %d-byte reply", i, err, len(reply.Packet))
		}
		if len(reply.Packet) > 0 && len(reply.Packet) >= len(pkt) {
			t.Fatalf("packet %d: %d-byte reply to %d bytes", i, len(reply.Packet), len(pkt))
		}
		out += len(reply.Packet)
		if out > in {
			t.Fatalf("after packet %d: %d bytes out, %d in", i, out, in)
		}
	}
	if wire.ResponsePacketLen >= wire.InitPacketLen || wire.CookiePacketLen >= wire.InitPacketLen {
		t.Fatal("reply sizes")
	}
	t.Logf("%d bytes in, %d out", in, out)
}

func TestAntiAmplification(t *testing.T) {
	var a AntiAmplification // factor 1
	if a.Allow(1) || a.Budget() != 0 {
		t.Fatal("allowed before anything was received")
	}
	a.Received(wire.InitPacketLen)
	if !a.Allow(wire.ResponsePacketLen) || a.Allow(wire.InitPacketLen-wire.ResponsePacketLen+1) {
		t.Fatal("factor 1")
	}
	if !a.Allow(wire.InitPacketLen-wire.ResponsePacketLen) || a.Budget() != 0 {
		t.Fatal("factor 1: exact budget")
	}
	if a.Allow(-1) {
		t.Fatal("negative size allowed")
	}
	m := AntiAmplification{Factor: MigrationAmplification}
	m.Received(100)
	m.Received(-5)
	if m.Budget() != 300 || !m.Allow(300) || m.Allow(1) {
		t.Fatal("factor 3")
	}
	if m.Validated() {
		t.Fatal("validated too early")
	}
	m.Validate()
	if !m.Validated() || !m.Allow(1<<20) || m.Budget() != -1 {
		t.Fatal("validated address still limited")
	}
}
