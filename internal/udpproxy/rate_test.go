package udpproxy

import (
	"testing"
	"time"
)

// TestRate: a burst larger than the rate queue is cut to what the queue
// holds (the rest is dropped and counted), and what passes leaves at the
// configured rate: the last datagram reaches the target no sooner than
// the wire time of those ahead of it.
func TestRate(t *testing.T) {
	const (
		size  = 1000
		rate  = 200e3 // bytes per second: 5 ms per datagram
		queue = 20 * size
		burst = 100
	)
	srv := startServer(t, lo4, false, 0)
	p := newProxy(t, srv.addr(), Config{Rate: rate, RateQueue: queue})
	c := listen(t, lo4)
	pkt := make([]byte, size)
	start := time.Now()
	for i := 0; i < burst; i++ {
		if _, err := c.WriteToUDPAddrPort(pkt, p.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	if !eventually(10*time.Second, func() bool {
		st := p.Stats().ToTarget
		return st.Received == burst && balanced(st)
	}) {
		t.Fatalf("the proxy did not take the burst: %+v", p.Stats().ToTarget)
	}
	took := time.Since(start)
	st := settle(t, p).ToTarget
	if st.Dropped == 0 || st.Forwarded > queue/size+5 || st.Forwarded < queue/size/2 {
		t.Fatalf("%d forwarded, %d dropped of a burst of %d into a queue of %d datagrams", st.Forwarded, st.Dropped, burst, queue/size)
	}
	if srv.count() != int(st.Forwarded) {
		t.Fatalf("the target got %d datagrams, the proxy forwarded %d", srv.count(), st.Forwarded)
	}
	if min := time.Duration(float64(st.Forwarded-1) * size / rate * float64(time.Second)); took < min {
		t.Fatalf("%d datagrams of %d bytes crossed in %v, faster than %v allows (%v)", st.Forwarded, size, took, rate, min)
	}
	if _, err := New(lo4, srv.addr(), Config{Rate: -1}); err == nil {
		t.Fatal("a negative Rate was accepted")
	}
}
