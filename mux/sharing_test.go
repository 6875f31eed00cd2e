package mux

import (
	"fmt"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
)

// These tests measure how a session shares a bottleneck link: between
// priority levels, within a level, and against the link's capacity.

// newNet is a network with link one way and its delay the other way.
func newNet(link netsim.LinkConfig) *netsim.Network {
	return netsim.New(21, link, netsim.LinkConfig{Delay: link.Delay, MTU: ethernetMTU})
}

// bottleneck is a 50 Mbit/s path with 20 ms one-way delay and a buffer of
// one bandwidth-delay product.
func bottleneck() netsim.LinkConfig {
	const rate = 50_000_000
	return netsim.LinkConfig{Delay: 20 * time.Millisecond, Bandwidth: rate, QueueBytes: rate / 8 * 40 / 1000, MTU: ethernetMTU}
}

// finishTimes runs A sending the given streams to B and returns when each
// finished (by service name) and the network.
func finishTimes(t *testing.T, link netsim.LinkConfig, streams map[string]struct {
	prio uint8
	size uint64
}) (map[string]time.Duration, *netsim.Network, *peerApp) {
	t.Helper()
	net := netsim.New(21, link, netsim.LinkConfig{Delay: link.Delay, MTU: ethernetMTU})
	a, b := pair(t, Config{}, Config{}, net.Now())
	appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
	for name, st := range streams {
		appB.expect[name] = st.size
		appA.send(name, st.prio, st.size)
	}
	if err := net.Run(simEnd{appA}, simEnd{appB}, allDone(appA, appB), time.Hour); err != nil {
		t.Fatal(err)
	}
	if appA.err != nil || appB.err != nil {
		t.Fatal(appA.err, appB.err)
	}
	out := map[string]time.Duration{}
	for id, j := range appB.in {
		info := fmt.Sprint(id)
		for name := range streams {
			if keyOf(name) == j.key {
				info = name
			}
		}
		out[info] = j.finished.Sub(netsim.Start)
	}
	return out, net, appB
}

type streamSpec = struct {
	prio uint8
	size uint64
}

// TestPriority: a high-priority bulk channel keeps its throughput while ten
// low-priority channels are busy: it finishes (nearly) as fast as alone.
func TestPriority(t *testing.T) {
	const size = 8 * mib
	alone, _, _ := finishTimes(t, bottleneck(), map[string]streamSpec{"high": {1, size}})
	crowd := map[string]streamSpec{"high": {1, size}}
	for i := 0; i < 10; i++ {
		crowd[fmt.Sprintf("low%d", i)] = streamSpec{5, 4 * mib}
	}
	busy, _, _ := finishTimes(t, bottleneck(), crowd)
	t.Logf("high alone %v, with ten busy low channels %v", alone["high"], busy["high"])
	if busy["high"] > alone["high"]*11/10+100*time.Millisecond {
		t.Fatalf("high-priority channel slowed from %v to %v by low-priority traffic", alone["high"], busy["high"])
	}
	for i := 0; i < 10; i++ {
		if lo := busy[fmt.Sprintf("low%d", i)]; lo < busy["high"] {
			t.Fatalf("low%d finished at %v, before the high channel (%v)", i, lo, busy["high"])
		}
	}
}

// TestFairness: two bulk channels of one priority share the link within
// 20 %: when the first finishes, the second has received at least 80 % as
// much.
func TestFairness(t *testing.T) {
	const size = 8 * mib
	net := netsim.New(23, bottleneck(), netsim.LinkConfig{Delay: 20 * time.Millisecond, MTU: ethernetMTU})
	a, b := pair(t, Config{}, Config{}, net.Now())
	appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
	appB.expect["one"], appB.expect["two"] = size, size
	appA.send("one", 3, size)
	appA.send("two", 3, size)
	firstDone := func() bool {
		for _, j := range appB.in {
			if j.eof {
				return true
			}
		}
		return appA.err != nil || appB.err != nil
	}
	if err := net.Run(simEnd{appA}, simEnd{appB}, firstDone, time.Hour); err != nil {
		t.Fatal(err)
	}
	if len(appB.in) != 2 {
		t.Fatalf("B has %d channels", len(appB.in))
	}
	var got []uint64
	for _, j := range appB.in {
		got = append(got, j.read)
	}
	lo, hi := min(got[0], got[1]), max(got[0], got[1])
	t.Logf("bytes received when the first finished: %d and %d", got[0], got[1])
	if lo*10 < hi*8 {
		t.Fatalf("unfair: %d vs %d bytes", lo, hi)
	}
}

// TestBandwidthLimited: one bulk channel over the bottleneck uses at least
// 90 % of the link rate, and the controller converges instead of overrunning
// the buffer persistently. CUBIC is loss-based and keeps a standing queue by
// design (RFC 9438), so occupancy is reported, not bounded; what is bounded
// is overflow: few packets dropped, and drops only in occasional episodes
// (at most a quarter of the 100 ms intervals after the first slow start).
func TestBandwidthLimited(t *testing.T) {
	link := bottleneck()
	const size = 48 * mib
	net := netsim.New(21, link, netsim.LinkConfig{Delay: link.Delay, MTU: ethernetMTU})
	bins := map[int64]bool{} // 100 ms intervals with a queue drop
	net.Tap = func(dir int, pkt []byte, at time.Time, ev netsim.Event) {
		if dir == 0 && ev == netsim.EventQueueDropped {
			bins[int64(at.Sub(netsim.Start)/(100*time.Millisecond))] = true
		}
	}
	a, b := pair(t, Config{}, Config{}, net.Now())
	appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
	appB.expect["bulk"] = size
	appA.send("bulk", 3, size)
	if err := net.Run(simEnd{appA}, simEnd{appB}, allDone(appA, appB), time.Hour); err != nil || appA.err != nil || appB.err != nil {
		t.Fatal(err, appA.err, appB.err)
	}
	var elapsed time.Duration
	for _, j := range appB.in {
		elapsed = j.finished.Sub(netsim.Start)
	}
	st := net.Stats(0)
	util := float64(st.BytesDelivered*8) / elapsed.Seconds() / float64(link.Bandwidth)
	dropRate := float64(st.QueueDropped) / float64(st.Sent)
	first, late, total := int64(-1), 0, int64(elapsed/(100*time.Millisecond))
	for bin := range bins {
		if first < 0 || bin < first {
			first = bin
		}
	}
	for bin := range bins {
		if bin > first+10 { // after the first slow start's overshoot
			late++
		}
	}
	t.Logf("48 MiB in %v: link utilisation %.3f, queue drops %.2f%% in %d of %d intervals, average queue %.0f of %d bytes",
		elapsed, util, 100*dropRate, late, total, st.AvgQueueBytes(), link.QueueBytes)
	if util < 0.90 {
		t.Fatalf("link utilisation %.3f, want at least 0.90", util)
	}
	if dropRate > 0.02 {
		t.Fatalf("%.2f%% of packets dropped at the queue", 100*dropRate)
	}
	if int64(late)*4 > total {
		t.Fatalf("drops in %d of %d intervals: the buffer is overrun persistently", late, total)
	}
}
