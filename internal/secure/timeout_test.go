package secure

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// TestWrongResponderKey: an initiator that targets the wrong public key
// gets silence and, after the handshake timeout, a clean timeout error.
// Retransmissions follow the jittered exponential backoff.
func TestWrongResponderKey(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	wrong := identityOf(t, 0x57).PublicKey()
	in, err := NewInitiator(p.ini, wrong, 0x1b2c3d4e, 0, DefaultParams(), HandshakeConfig{}, at(0), seeded(21))
	if err != nil {
		t.Fatal(err)
	}
	var sent []time.Time
	var inits [][]byte
	now := at(0)
	for range 100 {
		pkt, deadline, err := in.Poll(now)
		if err != nil {
			if err != ErrHandshakeTimeout {
				t.Fatalf("Poll: %v", err)
			}
			break
		}
		if pkt != nil {
			sent = append(sent, now)
			inits = append(inits, bytes.Clone(pkt))
			// The right responder stays silent: the destination tag is not
			// its own ...
			reply, err := p.r.HandleInitiation(nil, pkt, srcAddr, now, LoadState{}, 0)
			if err != ErrAddressing || reply.Packet != nil {
				t.Fatalf("responder answered a packet for another key: %v", err)
			}
			// ... and with its tag forged in, mac1 (keyed by the wrong key)
			// fails before any DH.
			c := bytes.Clone(pkt)
			tag := p.resp.AuthTag()
			copy(c[wire.OffDestination:], tag[:])
			reply, err = p.r.HandleInitiation(nil, c, srcAddr, now, LoadState{Overloaded: true}, 0)
			if err != ErrBadMAC || reply.Packet != nil {
				t.Fatalf("responder answered a bad mac1: %v", err)
			}
		}
		if deadline.IsZero() || !deadline.After(now) {
			t.Fatalf("deadline %v at %v", deadline, now)
		}
		now = deadline
	}
	if now != at(DefaultHandshakeTimeout) {
		t.Fatalf("timed out at %v, want %v", now.Sub(t0), DefaultHandshakeTimeout)
	}
	_, _, err = in.Poll(now.Add(time.Second))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) || err != ErrHandshakeTimeout {
		t.Fatalf("error %v is not a net.Error timeout", err)
	}
	if _, err := in.HandleResponse(make([]byte, wire.ResponsePacketLen), now); err != ErrHandshakeTimeout {
		t.Fatalf("HandleResponse after the timeout: %v", err)
	}

	// Backoff: the k-th gap is min(1 s << (k-1), 4 s) jittered by ±1/3, so
	// a dial keeps trying every few seconds until the 60 s limit: at least
	// 13 initiations even if every gap is at its longest (4/3 of nominal).
	if len(sent) < 13 || sent[0] != at(0) {
		t.Fatalf("%d initiations, at %v", len(sent), sent)
	}
	for k := 1; k < len(sent); k++ {
		d := min(DefaultRetransmitBase<<(k-1), DefaultRetransmitMax)
		gap := sent[k].Sub(sent[k-1])
		if gap < d*2/3 || gap >= d*4/3 {
			t.Errorf("gap %d: %v, want [%v, %v)", k, gap, d*2/3, d*4/3)
		}
	}
	t.Logf("initiations at %v", func() (ds []time.Duration) {
		for _, s := range sent {
			ds = append(ds, s.Sub(t0))
		}
		return ds
	}())
	// Every retransmission is a fresh initiation: new ephemeral key.
	for k := 1; k < len(inits); k++ {
		if bytes.Equal(inits[k][48:80], inits[k-1][48:80]) {
			t.Fatalf("initiation %d reuses the ephemeral key", k)
		}
	}
}

// TestBackoffCap: with a small cap, the gaps stop growing.
func TestBackoffCap(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	cfg := HandshakeConfig{RetransmitBase: 10 * ms, RetransmitMax: 40 * ms, Timeout: time.Second}
	in, err := NewInitiator(p.ini, p.resp.PublicKey(), 1, 0, DefaultParams(), cfg, at(0), seeded(22))
	if err != nil {
		t.Fatal(err)
	}
	var sent []time.Time
	now := at(0)
	for {
		pkt, deadline, err := in.Poll(now)
		if err != nil {
			break
		}
		if pkt != nil {
			sent = append(sent, now)
		}
		now = deadline
	}
	if now != at(time.Second) {
		t.Fatalf("timeout at %v", now.Sub(t0))
	}
	for k := 1; k < len(sent); k++ {
		d := min(10*ms<<(k-1), 40*ms)
		if gap := sent[k].Sub(sent[k-1]); gap < d*2/3 || gap >= d*4/3 {
			t.Fatalf("gap %d: %v for base %v", k, gap, d)
		}
	}
	if len(sent) < 20 {
		t.Fatalf("%d initiations in 1 s with a 40 ms cap", len(sent))
	}
}

// TestLastTwoInitiations: a response to the newest initiation or to the
// one sent before it completes the handshake, with the round trip of the
// initiation it answers; a response to an older one does not.
func TestLastTwoInitiations(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	// sendAll has the initiator send n initiations, each when it is due,
	// and returns them and when they left.
	sendAll := func(in *Initiator, n int) ([][]byte, []time.Time) {
		var sent [][]byte
		var times []time.Time
		now := at(0)
		for k := range n {
			pkt, wake, err := in.Poll(now)
			if err != nil || pkt == nil {
				t.Fatalf("initiation %d: %v", k+1, err)
			}
			sent, times = append(sent, bytes.Clone(pkt)), append(times, now)
			now = wake
		}
		return sent, times
	}
	answer := func(init []byte, now time.Time) []byte {
		r, err := p.r.HandleInitiation(nil, init, srcAddr, now, LoadState{}, 5)
		if err != nil || r.Kind != ReplyResponse {
			t.Fatalf("responder: %v", err)
		}
		return r.Packet
	}

	// The response to the first of three initiations is too old.
	in := p.initiator(t, 1, 0, at(0))
	sent, times := sendAll(in, 3)
	now := times[2].Add(100 * time.Millisecond)
	late := answer(sent[0], now)
	if _, err := in.HandleResponse(late, now); err != ErrHandshakeAuth {
		t.Fatalf("response to the third-newest initiation: %v, want ErrHandshakeAuth", err)
	}
	// The one before the newest completes it, with its own round trip.
	est, err := in.HandleResponse(answer(sent[1], now), now)
	if err != nil {
		t.Fatalf("response to the initiation before the newest: %v", err)
	}
	if want := now.Sub(times[1]); est.RTT != want {
		t.Fatalf("RTT %v, want %v (from the initiation answered)", est.RTT, want)
	}
	if _, err := in.HandleResponse(answer(sent[2], now), now); err != ErrUnexpected {
		t.Fatalf("a second response after completion: %v, want ErrUnexpected", err)
	}

	// The newest completes it too.
	in = p.initiator(t, 2, 0, at(0))
	sent, times = sendAll(in, 2)
	now = times[1].Add(time.Second)
	if est, err := in.HandleResponse(answer(sent[1], now), now); err != nil || est.RTT != time.Second {
		t.Fatalf("response to the newest initiation: %v", err)
	}
}
