package mux

import (
	"testing"
	"time"
)

// TestSetInitialRTT: a session told the handshake's round trip probes for
// its first, unacknowledged packet after about three of them (plus the
// peer's ACK delay), not after RFC 9002's default of about 1 s; once an
// ACK has given a sample, the call changes nothing.
func TestSetInitialRTT(t *testing.T) {
	now := time.Unix(1000, 0)
	firstProbe := func(rtt time.Duration) time.Duration {
		a, _ := pair(t, Config{}, Config{}, now)
		a.SetInitialRTT(rtt)
		a.Ping()
		buf := make([]byte, a.MaxPacketSize())
		if a.Poll(buf, now) == 0 {
			t.Fatal("no packet for the ping")
		}
		return a.Deadline().Sub(now)
	}
	def, fast := firstProbe(0), firstProbe(10*time.Millisecond)
	if def < 999*time.Millisecond || fast > 100*time.Millisecond || fast < 30*time.Millisecond {
		t.Fatalf("first probe after %v by default, %v after a 10 ms handshake", def, fast)
	}

	a, b := pair(t, Config{}, Config{}, now)
	a.Ping()
	buf := make([]byte, 65536)
	n := a.Poll(buf[:a.MaxPacketSize()], now)
	later := now.Add(40 * time.Millisecond)
	b.Receive(buf[:n], later)
	b.Ping() // an ACK goes out at once with an ack-eliciting packet
	m := b.Poll(buf[:b.MaxPacketSize()], later)
	a.Receive(buf[:m], now.Add(80*time.Millisecond))
	before := a.Stats().SmoothedRTT
	a.SetInitialRTT(time.Second)
	if a.Stats().SmoothedRTT != before || before > 100*time.Millisecond {
		t.Fatalf("smoothed RTT %v after a sample, %v after SetInitialRTT", before, a.Stats().SmoothedRTT)
	}
}
