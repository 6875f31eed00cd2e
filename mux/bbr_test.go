package mux

import (
	"slices"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
	"github.com/havenproto/haven/mux/congestion"
)

// bulkRTT sends 16 MiB over a simulated 50 Mbit/s path with a 20 ms round
// trip and a one-BDP drop-tail queue, with the sender's controller from
// newCC (nil: CUBIC), and returns the median RTT the sender measured in
// the second half of the transfer and the goodput as a fraction of the
// link.
func bulkRTT(t *testing.T, newCC func(int) congestion.Controller) (time.Duration, float64) {
	const delay, bw = 10 * time.Millisecond, 50_000_000
	bdp := int(bw / 8 * 2 * delay / time.Second)
	link := netsim.LinkConfig{Delay: delay, Bandwidth: bw, QueueBytes: bdp, MTU: ethernetMTU}
	net := netsim.New(3, link, link)
	a, b := pair(t, Config{NewController: newCC}, Config{}, net.Now())
	appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
	appB.expect["bulk"] = 16 * mib
	appA.send("bulk", 3, 16*mib)
	var rtts []time.Duration
	var last time.Time
	appB.progress = func(j *streamJob, now time.Time) {
		if j.read > 8*mib && now.Sub(last) >= 5*time.Millisecond {
			last = now
			rtts = append(rtts, a.rec.rtt.Latest())
		}
	}
	start := net.Now()
	if err := net.Run(simEnd{appA}, simEnd{appB}, allDone(appA, appB), time.Minute); err != nil {
		t.Fatal(err)
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], 16 * mib * 8 / net.Now().Sub(start).Seconds() / bw
}

// TestBBRKeepsQueueShort: on a rate-limited path with a one-BDP queue,
// CUBIC fills the queue (its round trips approach twice the path's),
// while BBR keeps them within a quarter of the path's own round trip at
// about the same goodput (issue #15's delay-based controller).
func TestBBRKeepsQueueShort(t *testing.T) {
	cubicRTT, cubicPut := bulkRTT(t, nil)
	bbrRTT, bbrPut := bulkRTT(t, func(mtu int) congestion.Controller { return congestion.NewBBR(mtu) })
	t.Logf("CUBIC: RTT p50 %v, %.1f %% of the link; BBR: %v, %.1f %%", cubicRTT, 100*cubicPut, bbrRTT, 100*bbrPut)
	const pathRTT = 20 * time.Millisecond
	if bbrRTT > pathRTT*5/4 {
		t.Errorf("BBR's median RTT %v under bulk, want at most %v", bbrRTT, pathRTT*5/4)
	}
	if cubicRTT < pathRTT*3/2 {
		t.Errorf("CUBIC's median RTT %v: the queue did not fill, the test proves nothing", cubicRTT)
	}
	if bbrPut < 0.85 || bbrPut < cubicPut-0.1 {
		t.Errorf("BBR's goodput %.1f %% of the link (CUBIC %.1f %%)", 100*bbrPut, 100*cubicPut)
	}
}
