package secure

import (
	"testing"
	"time"
)

// TestHandshakeRTT: the initiator's Established carries the time from the
// newest initiation to its response, not from the first one, so a
// retransmitted handshake still gives a true round-trip sample.
func TestHandshakeRTT(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	in := p.initiator(t, 1, 0, at(0))
	firstInit(t, in, at(0)) // lost
	_, wake, err := in.Poll(at(0))
	if err != nil || wake.Before(at(DefaultRetransmitBase*2/3)) {
		t.Fatalf("next initiation due at %v: %v", wake.Sub(t0), err)
	}
	init2, _, err := in.Poll(wake)
	if err != nil || init2 == nil {
		t.Fatalf("no retransmission at %v: %v", wake.Sub(t0), err)
	}
	const rtt = 70 * time.Millisecond
	r, err := p.r.HandleInitiation(nil, init2, srcAddr, wake.Add(rtt/2), LoadState{}, 5)
	if err != nil {
		t.Fatal(err)
	}
	est, err := in.HandleResponse(r.Packet, wake.Add(rtt))
	if err != nil {
		t.Fatal(err)
	}
	if est.RTT != rtt {
		t.Fatalf("RTT %v, want %v (from the newest initiation)", est.RTT, rtt)
	}
	if r.Session == nil || r.Session.RTT != 0 {
		t.Fatal("the responder's Established has an RTT (or is missing); only the initiator measures one")
	}
}
