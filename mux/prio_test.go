package mux

import (
	"slices"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
)

// prioRun runs, over a simulated 50 Mbit/s path with a 20 ms round trip
// and a one-BDP drop-tail queue each way, a priority-0 request stream
// echoed by the peer on a priority-0 stream of its own, beside (when
// bulk) a 64 MiB bulk channel at the default priority. It returns each
// request's round trip, and the bulk's goodput from the first request to
// the last (0 without bulk).
func prioRun(t *testing.T, bulk bool) (rtts []time.Duration, goodput float64) {
	const (
		delay   = 10 * time.Millisecond
		bw      = 50_000_000
		msgSize = 64
		count   = 300
		every   = 10 * time.Millisecond
	)
	bdp := int(bw / 8 * 2 * delay / time.Second)
	link := netsim.LinkConfig{Delay: delay, Bandwidth: bw, QueueBytes: bdp, MTU: ethernetMTU}
	net := netsim.New(3, link, link)
	a, b := pair(t, Config{}, Config{}, net.Now())
	appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
	small, err := a.OpenStream("small", 0)
	if err != nil {
		t.Fatal(err)
	}
	back, err := b.OpenStream("back", 0)
	if err != nil {
		t.Fatal(err)
	}
	appB.expect["small"] = msgSize * count
	appA.expect["back"] = msgSize * count
	if bulk {
		appB.expect["bulk"] = 64 * mib
		appA.send("bulk", 3, 64*mib)
	}
	start := net.Now().Add(time.Second) // the bulk channel has filled the path
	end := &timedEnd{simEnd: simEnd{appA}, id: small, start: start, every: every, count: count, size: msgSize}
	echoed := uint64(0)
	appB.progress = func(j *streamJob, now time.Time) {
		if j.key != keyOf("small") {
			return
		}
		for echoed < j.read { // echo what arrived, in the pattern A checks
			n := min(j.read-echoed, 4096)
			buf := make([]byte, n)
			fillPattern(buf, keyOf("back"), echoed)
			w, err := b.Write(back, buf)
			if err != nil {
				t.Fatal(err)
			}
			echoed += uint64(w)
			if w < int(n) {
				t.Fatal("echo stream full")
			}
		}
	}
	var bulkAt [2]uint64
	appA.progress = func(j *streamJob, now time.Time) {
		if j.key != keyOf("back") {
			return
		}
		for len(rtts) < int(j.read/msgSize) {
			rtts = append(rtts, now.Sub(end.sentAt[len(rtts)]))
		}
	}
	bulkRead := func() uint64 {
		for _, j := range appB.in {
			if j.key == keyOf("bulk") {
				return j.read
			}
		}
		return 0
	}
	done := func() bool {
		if appA.err != nil || appB.err != nil {
			return true
		}
		if bulkAt[0] == 0 && !net.Now().Before(start) {
			bulkAt[0] = bulkRead() + 1
		}
		return len(rtts) == count
	}
	if err := net.Run(end, simEnd{appB}, done, time.Minute); err != nil || appA.err != nil || appB.err != nil {
		t.Fatal(err, appA.err, appB.err)
	}
	if bulk {
		bulkAt[1] = bulkRead()
		goodput = float64(bulkAt[1]-(bulkAt[0]-1)) * 8 / net.Now().Sub(start).Seconds() / bw
	}
	return rtts, goodput
}

// TestPriorityBesideBulk: on a 50 Mbit/s path with a one-BDP queue, a
// priority-0 request/response stream beside a bulk transfer on the same
// session keeps its 99th-percentile round trip within 4× its idle round
// trip + 5 ms, while the bulk keeps at least 90 % of the link (issue #15).
func TestPriorityBesideBulk(t *testing.T) {
	idle, _ := prioRun(t, false)
	loaded, goodput := prioRun(t, true)
	p := func(s []time.Duration, q float64) time.Duration {
		s = slices.Clone(s)
		slices.Sort(s)
		return s[min(len(s)-1, int(q*float64(len(s))))]
	}
	limit := 4*p(idle, 0.5) + 5*time.Millisecond
	t.Logf("idle p50 %v; beside bulk p50 %v, p99 %v (limit %v); bulk %.1f %% of the link",
		p(idle, 0.5), p(loaded, 0.5), p(loaded, 0.99), limit, 100*goodput)
	if p(loaded, 0.99) > limit {
		t.Errorf("p99 round trip %v beside bulk, want at most %v", p(loaded, 0.99), limit)
	}
	if goodput < 0.9 {
		t.Errorf("bulk at %.1f %% of the link beside the requests, want 90 %%", 100*goodput)
	}
}
