package udpproxy

import (
	"testing"
	"time"
)

// TestRate: datagrams sent faster than the rate cap fill the rate queue,
// what finds it full is dropped and counted, and what passes leaves at
// the configured rate: the last datagram reaches the target no sooner
// than the wire time of those ahead of it.
func TestRate(t *testing.T) {
	const (
		rate  = 640 // bytes per second: 100 ms per 64-byte datagram
		queue = 5 * payloadSize
		burst = 60
	)
	srv := startServer(t, lo4, false, 0)
	p := newProxy(t, srv.addr(), Config{Rate: rate, RateQueue: queue})
	c := listen(t, lo4)
	start := time.Now()
	sendPaced(t, c, p, 0, burst, 8) // read by the proxy far faster than it may forward
	if !eventually(30*time.Second, func() bool { return balanced(p.Stats().ToTarget) }) {
		t.Fatalf("the proxy did not settle: %+v", p.Stats().ToTarget)
	}
	took := time.Since(start)
	st := settle(t, p).ToTarget
	if st.Dropped == 0 || st.Forwarded == 0 || st.Forwarded+st.Dropped != burst {
		t.Fatalf("%d forwarded, %d dropped of %d sent into a queue of %d datagrams", st.Forwarded, st.Dropped, burst, queue/payloadSize)
	}
	// The target reads on its own goroutine: give it the time to.
	if !eventually(5*time.Second, func() bool { return srv.count() == int(st.Forwarded) }) {
		t.Fatalf("the target got %d datagrams, the proxy forwarded %d", srv.count(), st.Forwarded)
	}
	if min := time.Duration(float64(st.Forwarded-1) * payloadSize / rate * float64(time.Second)); took < min {
		t.Fatalf("%d datagrams of %d bytes crossed in %v, faster than %v B/s allows (%v)", st.Forwarded, payloadSize, took, rate, min)
	}
	if _, err := New(lo4, srv.addr(), Config{Rate: -1}); err == nil {
		t.Fatal("a negative Rate was accepted")
	}
}
