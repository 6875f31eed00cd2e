package mux

import (
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// TestReliableCarrierProbes: when a probe timeout fires with data in
// flight, a session on a reliable carrier (the TCP fallback) sends probes
// that resend nothing, while one on a datagram path resends the oldest
// data (RFC 9002 §6.2.4). Nothing reaches the peer in either case: the
// path is stalled, not lossy.
func TestReliableCarrierProbes(t *testing.T) {
	for _, reliable := range []bool{false, true} {
		now := time.Unix(1_700_000_000, 0)
		a, _ := pair(t, Config{ReliableCarrier: reliable}, Config{}, now)
		id, err := a.OpenStream("", 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write(id, make([]byte, 32<<10)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, wire.MaxPacketSize)
		for a.Poll(buf, now) > 0 { // everything leaves, nothing arrives
		}
		sent := a.Stats().PacketsSent
		for i := 0; i < 3; i++ { // three probe timeouts, each Polled dry
			now = a.Deadline()
			if now.IsZero() {
				t.Fatal("no probe timer armed with data in flight")
			}
			for a.Poll(buf, now) > 0 {
			}
		}
		st := a.Stats()
		if st.PacketsSent <= sent {
			t.Fatalf("reliable=%v: no probe sent after the probe timeouts", reliable)
		}
		if reliable && st.StreamBytesRetransmitted != 0 {
			t.Fatalf("reliable carrier: %d stream bytes resent by probes", st.StreamBytesRetransmitted)
		}
		if !reliable && st.StreamBytesRetransmitted == 0 {
			t.Fatal("datagram path: the probes resent no data")
		}
		if reliable && st.PMTUBlackHoles != 0 {
			t.Fatal("reliable carrier: a probe timeout raised a black-hole suspicion")
		}
	}
}
