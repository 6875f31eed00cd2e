package netsim

import (
	"bytes"
	"errors"
	"math"
	"math/bits"
	"slices"
	"testing"
	"time"
)

const statN = 100_000 // packets per statistical test

func TestPerfectLinkAndDelay(t *testing.T) {
	n := New(1, LinkConfig{Delay: 30 * time.Millisecond}, LinkConfig{})
	src, dst := paced(1000, time.Millisecond, 100), &sink{keep: true}
	runToEnd(t, n, src, dst)
	if len(dst.seqs) != 1000 {
		t.Fatalf("delivered %d, want 1000", len(dst.seqs))
	}
	for i := range dst.seqs {
		if dst.seqs[i] != uint64(i) {
			t.Fatalf("delivery %d has seq %d", i, dst.seqs[i])
		}
		if want := src.sent[i] + 30*time.Millisecond; dst.times[i] != want {
			t.Fatalf("packet %d arrived at %v, want %v", i, dst.times[i], want)
		}
		if want := fill(make([]byte, 100), uint64(i), 100); !bytes.Equal(dst.pkts[i], want) {
			t.Fatalf("packet %d altered", i)
		}
	}
	s := n.Stats(0)
	if s.Sent != 1000 || s.Delivered != 1000 || s.BytesSent != 100_000 || s.BytesDelivered != 100_000 {
		t.Errorf("stats %+v", s)
	}
	if s := n.Stats(1); s.Sent != 0 {
		t.Errorf("reverse direction saw traffic: %+v", s)
	}
}

func TestLoss(t *testing.T) {
	n := New(7, LinkConfig{Loss: 0.10}, LinkConfig{})
	dst := &sink{}
	runToEnd(t, n, paced(statN, time.Millisecond, 64), dst)
	s := n.Stats(0)
	within(t, "loss rate", float64(s.Lost)/statN, 0.09, 0.11)
	if int(s.Delivered) != len(dst.seqs) || s.Delivered+s.Lost != statN {
		t.Errorf("stats %+v, %d received", s, len(dst.seqs))
	}
	checkIdentity(t, s)
}

func TestBurstLoss(t *testing.T) {
	const enter, exit = 0.01, 0.25
	n := New(11, LinkConfig{BurstEnter: enter, BurstExit: exit}, LinkConfig{})
	dst := &sink{}
	runToEnd(t, n, paced(statN, time.Millisecond, 64), dst)
	s := n.Stats(0)
	if s.Lost != 0 || s.BurstLost == 0 {
		t.Fatalf("stats %+v", s)
	}
	// Runs of consecutive missing sequence numbers are the bursts.
	bursts, missing := 0, 0
	var prev uint64
	for i, seq := range append(dst.seqs, statN) {
		gap := int(seq) - int(prev) - 1
		if i == 0 {
			gap = int(seq)
		}
		if gap > 0 {
			bursts++
			missing += gap
		}
		prev = seq
	}
	if missing != int(s.BurstLost) {
		t.Fatalf("missing %d, BurstLost %d", missing, s.BurstLost)
	}
	mean := float64(missing) / float64(bursts)
	within(t, "mean burst length", mean, 0.9/exit, 1.1/exit)
	within(t, "loss rate", float64(missing)/statN, 0.9*enter/(enter+exit), 1.1*enter/(enter+exit))
	checkIdentity(t, s)
}

func TestBurstLossPartial(t *testing.T) {
	// BurstLoss below 1 loses only that share of the bad state's packets;
	// BurstExit 0 keeps the link in the bad state for good.
	n := New(12, LinkConfig{BurstEnter: 1, BurstLoss: 0.5}, LinkConfig{})
	runToEnd(t, n, paced(statN, time.Millisecond, 64), &sink{})
	within(t, "bad-state loss", float64(n.Stats(0).BurstLost)/statN, 0.49, 0.51)
}

func TestDuplicate(t *testing.T) {
	n := New(3, LinkConfig{Duplicate: 0.05, Jitter: 3 * time.Millisecond}, LinkConfig{})
	dst := &sink{}
	runToEnd(t, n, paced(statN, time.Millisecond, 64), dst)
	s := n.Stats(0)
	within(t, "duplication rate", float64(s.Duplicated)/statN, 0.045, 0.055)
	counts := make([]int, statN)
	for _, seq := range dst.seqs {
		counts[seq]++
	}
	twice := 0
	for seq, c := range counts {
		if c < 1 || c > 2 {
			t.Fatalf("seq %d delivered %d times", seq, c)
		}
		if c == 2 {
			twice++
		}
	}
	if int64(twice) != s.Duplicated || s.Delivered != statN+s.Duplicated {
		t.Errorf("%d seen twice, stats %+v", twice, s)
	}
	checkIdentity(t, s)
}

func TestCorrupt(t *testing.T) {
	for _, size := range []int{1, 8, 1200} {
		n := New(5, LinkConfig{Corrupt: 0.10}, LinkConfig{})
		pkt := make([]byte, size)
		for i := range pkt {
			pkt[i] = byte(i * 13)
		}
		orig := slices.Clone(pkt)
		for range statN {
			n.Send(0, pkt) // all at one instant: delivered in send order
		}
		if !bytes.Equal(pkt, orig) {
			t.Fatal("Send modified the caller's buffer")
		}
		var flips [4]int
		dst := &receiveFunc{f: func(got []byte) {
			if len(got) != size {
				t.Fatalf("length changed: %d", len(got))
			}
			d := 0
			for i := range got {
				d += bits.OnesCount8(got[i] ^ orig[i])
			}
			if d > 3 {
				t.Fatalf("%d bits flipped", d)
			}
			flips[d]++
		}}
		runToEnd(t, n, &sink{}, dst)
		s := n.Stats(0)
		corrupted := flips[1] + flips[2] + flips[3]
		if int64(corrupted) != s.Corrupted || s.Delivered != statN {
			t.Errorf("size %d: %d corrupted deliveries, stats %+v", size, corrupted, s)
		}
		within(t, "corruption rate", float64(corrupted)/statN, 0.09, 0.11)
		for k := 1; k <= 3; k++ {
			within(t, "share of corruptions flipping k bits", float64(flips[k])/float64(corrupted), 0.30, 0.37)
		}
	}
}

// receiveFunc is a silent endpoint that passes each packet to f.
type receiveFunc struct{ f func([]byte) }

func (r *receiveFunc) Receive(pkt []byte, _ time.Time) { r.f(pkt) }
func (r *receiveFunc) Poll([]byte, time.Time) int      { return 0 }
func (r *receiveFunc) Deadline() time.Time             { return time.Time{} }

func TestJitterReorders(t *testing.T) {
	for _, tc := range []struct {
		jitter  time.Duration
		reorder bool
	}{
		{900 * time.Microsecond, false}, // below the 1 ms gap: order kept
		{5 * time.Millisecond, true},
	} {
		n := New(9, LinkConfig{Delay: 20 * time.Millisecond, Jitter: tc.jitter}, LinkConfig{})
		src, dst := paced(statN, time.Millisecond, 64), &sink{}
		runToEnd(t, n, src, dst)
		late := lateCount(dst.seqs)
		if (late > 0) != tc.reorder {
			t.Errorf("jitter %v: %d packets overtaken", tc.jitter, late)
		}
		var minD, maxD time.Duration = time.Hour, 0
		for i, at := range dst.times {
			d := at - src.sent[dst.seqs[i]]
			minD, maxD = min(minD, d), max(maxD, d)
		}
		if minD < 20*time.Millisecond || maxD >= 20*time.Millisecond+tc.jitter {
			t.Errorf("jitter %v: delays in [%v, %v]", tc.jitter, minD, maxD)
		}
	}
}

func TestReorderProbability(t *testing.T) {
	for _, rd := range []time.Duration{5 * time.Millisecond, 0} {
		n := New(13, LinkConfig{Delay: 10 * time.Millisecond, Reorder: 0.10, ReorderDelay: rd}, LinkConfig{})
		src, dst := paced(statN, time.Millisecond, 64), &sink{}
		runToEnd(t, n, src, dst)
		within(t, "reordered share", float64(lateCount(dst.seqs))/statN, 0.09, 0.11)
		want := rd
		if want == 0 {
			want = DefaultReorderDelay
		}
		for i, at := range dst.times {
			if d := at - src.sent[dst.seqs[i]]; d != 10*time.Millisecond && d != 10*time.Millisecond+want {
				t.Fatalf("packet delayed %v", d)
			}
		}
	}
}

func TestMTU(t *testing.T) {
	n := New(1, LinkConfig{MTU: 1200}, LinkConfig{})
	var lens []int
	for _, size := range []int{0, 1199, 1200, 1201, 9000} {
		n.Send(0, make([]byte, size))
	}
	runToEnd(t, n, &sink{}, &receiveFunc{f: func(p []byte) { lens = append(lens, len(p)) }})
	if !slices.Equal(lens, []int{0, 1199, 1200}) || n.Stats(0).MTUDropped != 2 {
		t.Errorf("delivered lengths %v, stats %+v", lens, n.Stats(0))
	}
}

func TestBlackoutEdges(t *testing.T) {
	ms := time.Millisecond
	cfg := LinkConfig{Delay: 50 * ms, Blackouts: []Window{{10 * ms, 20 * ms}, {30 * ms, 30 * ms}, {40 * ms, 41 * ms}}}
	n := New(1, cfg, LinkConfig{})
	cfg.Blackouts[0].End = 0 // the Network keeps its own copy
	times := []time.Duration{5 * ms, 10*ms - 1, 10 * ms, 15 * ms, 20*ms - 1, 20 * ms, 30 * ms, 40 * ms, 41*ms - 1, 41 * ms}
	src, dst := scheduled(16, times...), &sink{}
	runToEnd(t, n, src, dst)
	// Sent at 5ms, the first packet lands in the blackout but was already
	// in flight; the empty window [30ms, 30ms) drops nothing.
	if want := []uint64{0, 1, 5, 6, 9}; !slices.Equal(dst.seqs, want) {
		t.Errorf("delivered %v, want %v", dst.seqs, want)
	}
	if s := n.Stats(0); s.BlackoutDropped != 5 {
		t.Errorf("stats %+v", s)
	}
}

func TestBandwidthSpacing(t *testing.T) {
	ms := time.Millisecond
	// 1250 bytes at 1 Mbit/s take exactly 10 ms to serialize.
	n := New(1, LinkConfig{Bandwidth: 1_000_000, Delay: 5 * ms}, LinkConfig{})
	src, dst := scheduled(1250, 0, 0, 0, 0, 0, 100*ms, 105*ms), &sink{}
	runToEnd(t, n, src, dst)
	want := []time.Duration{15 * ms, 25 * ms, 35 * ms, 45 * ms, 55 * ms, 115 * ms, 125 * ms}
	if !slices.Equal(dst.times, want) {
		t.Errorf("arrivals %v, want %v", dst.times, want)
	}
}

func TestQueueOverflow(t *testing.T) {
	n := New(1, LinkConfig{Bandwidth: 1_000_000, QueueBytes: 5000}, LinkConfig{})
	pkt := make([]byte, 1250)
	for range 10 {
		n.Send(0, pkt)
	}
	s := n.Stats(0)
	if s.QueueDropped != 6 || s.InFlight != 4 || s.MaxQueueBytes != 5000 {
		t.Errorf("after burst: %+v", s)
	}
	// The backlog drains at link rate: 15 ms later, 1.5 packets are out
	// and 3125 bytes are left.
	if err := n.Run(&sink{}, &ticker{period: time.Hour, next: Start.Add(15 * time.Millisecond)}, nil, 15*time.Millisecond); !errors.Is(err, ErrTimeLimit) {
		t.Fatal(err)
	}
	if got := n.links[0].backlog(n.now); got != 3125 {
		t.Errorf("backlog %d, want 3125", got)
	}
	n.Send(0, pkt) // 3125 + 1250 fits
	n.Send(0, pkt) // 4375 + 1250 does not
	if s := n.Stats(0); s.QueueDropped != 7 || s.InFlight != 4 || s.MaxQueueBytes != 5000 {
		t.Errorf("after drain: %+v", s)
	}
	runToEnd(t, n, &sink{}, &sink{})
	checkIdentity(t, n.Stats(0))
}

func TestQueueIntegral(t *testing.T) {
	n := New(1, LinkConfig{Bandwidth: 1_000_000}, LinkConfig{})
	n.Send(0, make([]byte, 1250)) // 1250 bytes draining linearly over 10 ms
	n.Run(&sink{}, &ticker{period: time.Hour, next: Start.Add(time.Second)}, nil, time.Second)
	s := n.Stats(0)
	within(t, "byte-seconds", s.QueueByteSeconds, 6.25-1e-9, 6.25+1e-9)
	if s.Elapsed != time.Second || s.MaxQueueBytes != 1250 {
		t.Errorf("stats %+v", s)
	}
	within(t, "average queue", s.AvgQueueBytes(), 6.25-1e-9, 6.25+1e-9) // over 1 s
}

func TestSaturatedThroughput(t *testing.T) {
	const rate, queue, size = 10_000_000, 30_000, 1000
	// Offer twice the link rate for 10 s: 1000 bytes every 400 µs.
	n := New(21, LinkConfig{Bandwidth: rate, QueueBytes: queue, Delay: 20 * time.Millisecond}, LinkConfig{})
	src, dst := paced(25_000, 400*time.Microsecond, size), &sink{}
	runToEnd(t, n, src, dst)
	s := n.Stats(0)
	elapsed := dst.times[len(dst.times)-1] - dst.times[0]
	throughput := float64(int64(len(dst.times)-1)*size*8) / elapsed.Seconds()
	within(t, "throughput/rate", throughput/rate, 0.999, 1.0001)
	within(t, "share dropped", float64(s.QueueDropped)/float64(s.Sent), 0.49, 0.51)
	if s.MaxQueueBytes > queue || s.MaxQueueBytes < queue-size {
		t.Errorf("MaxQueueBytes %d", s.MaxQueueBytes)
	}
	within(t, "average queue", s.AvgQueueBytes(), 0.9*queue, queue)
	for i := 1; i < len(dst.times); i++ {
		if gap := dst.times[i] - dst.times[i-1]; gap < 800*time.Microsecond {
			t.Fatalf("deliveries %d and %d only %v apart", i-1, i, gap)
		}
	}
	checkIdentity(t, s)
}

func TestFractionalRate(t *testing.T) {
	// 1 byte at 3 bit/s is 2.666… s: the remainder is carried, so 3000
	// back-to-back bytes take exactly 8000 s, not 3000 rounded delays.
	n := New(1, LinkConfig{Bandwidth: 3}, LinkConfig{})
	for range 3000 {
		n.Send(0, []byte{1})
	}
	dst := &sink{}
	runToEnd(t, n, &sink{}, &receiveFunc{f: func([]byte) { dst.times = append(dst.times, n.Now().Sub(Start)) }})
	if last := dst.times[len(dst.times)-1]; last != 8000*time.Second {
		t.Errorf("last delivery at %v, want 8000s", last)
	}
}

func TestSendCopiesBuffer(t *testing.T) {
	n := New(1, LinkConfig{Delay: time.Millisecond}, LinkConfig{})
	pkt := fill(make([]byte, 100), 42, 100)
	n.Send(0, pkt)
	want := slices.Clone(pkt)
	clear(pkt)
	dst := &sink{keep: true}
	runToEnd(t, n, &sink{}, dst)
	if len(dst.pkts) != 1 || !bytes.Equal(dst.pkts[0], want) {
		t.Errorf("delivered %x, want %x", dst.pkts, want)
	}
}

func TestBothDirectionsIndependent(t *testing.T) {
	// Traffic in one direction must not change the other's random choices.
	lost := func(reverse int) int64 {
		n := New(99, LinkConfig{Loss: 0.3}, LinkConfig{Loss: 0.3})
		for i := range 1000 {
			n.Send(0, []byte{byte(i)})
			for range reverse {
				n.Send(1, []byte{byte(i)})
			}
		}
		return n.Stats(0).Lost
	}
	if a, b := lost(0), lost(3); a != b {
		t.Errorf("A→B losses %d vs %d depending on B→A traffic", a, b)
	}
}

func TestSetLink(t *testing.T) {
	n := New(1, LinkConfig{Bandwidth: 1_000_000}, LinkConfig{})
	n.Send(0, make([]byte, 1250)) // 10 ms at 1 Mbit/s
	n.SetLink(0, LinkConfig{Bandwidth: 2_000_000, MTU: 100})
	// The 1250-byte backlog now drains in 5 ms; the packet already in
	// flight keeps its time.
	if got := n.links[0].backlog(0); got != 1250 {
		t.Errorf("backlog %d", got)
	}
	if n.links[0].free != 5*time.Millisecond {
		t.Errorf("free at %v", n.links[0].free)
	}
	n.Send(0, make([]byte, 101))
	n.Send(0, make([]byte, 100)) // leaves at 5 ms + 400 µs
	dst := &sink{}
	runToEnd(t, n, &sink{}, dst)
	// The small packet overtakes the one sent before the change.
	if want := []time.Duration{5*time.Millisecond + 400*time.Microsecond, 10 * time.Millisecond}; !slices.Equal(dst.times, want) {
		t.Errorf("arrivals %v", dst.times)
	}
	if n.Stats(0).MTUDropped != 1 {
		t.Errorf("stats %+v", n.Stats(0))
	}
}

func TestInvalidConfigPanics(t *testing.T) {
	for name, cfg := range map[string]LinkConfig{
		"loss":      {Loss: 1.5},
		"nan":       {Duplicate: math.NaN()},
		"negative":  {Delay: -1},
		"bandwidth": {Bandwidth: -1},
		"queue":     {QueueBytes: -1},
		"mtu":       {MTU: -1},
		"window":    {Blackouts: []Window{{2, 1}}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			New(1, LinkConfig{}, cfg)
		}()
	}
	defer func() {
		if recover() == nil {
			t.Error("Send from endpoint 2 did not panic")
		}
	}()
	New(1, LinkConfig{}, LinkConfig{}).Send(2, nil)
}

func TestPoolSteadyStateAllocs(t *testing.T) {
	n := New(1, LinkConfig{Delay: time.Millisecond, Jitter: time.Millisecond, Corrupt: 0.1, Duplicate: 0.1}, LinkConfig{})
	eps := [2]Endpoint{&sink{}, &receiveFunc{f: func([]byte) {}}}
	pkt := make([]byte, 1200)
	step := func() {
		for range 10 {
			n.Send(0, pkt)
		}
		n.now += 10 * time.Millisecond
		for len(n.pending) > 0 && n.pending[0].at <= n.now {
			n.deliverNext(&eps)
		}
	}
	for range 100 {
		step() // warm the pool and the heap
	}
	if a := testing.AllocsPerRun(100, step); a != 0 {
		t.Errorf("%v allocations per 10 packets in steady state", a)
	}
}

func TestPoolClasses(t *testing.T) {
	var p bufPool
	for _, n := range []int{0, 1, 64, 65, 1200, 65536, 65537} {
		b := p.get(n)
		if len(b) != n {
			t.Fatalf("get(%d) has length %d", n, len(b))
		}
		p.put(b)
		if c := poolClass(n); c >= 0 && len(p.free[c]) != 1 {
			t.Fatalf("get(%d): buffer not pooled", n)
		}
		if b2 := p.get(n); len(b2) != n {
			t.Fatalf("second get(%d) has length %d", n, len(b2))
		}
	}
	if p.bytes != 0 {
		t.Errorf("pool accounts %d bytes while empty", p.bytes)
	}
}

func TestSaturation(t *testing.T) {
	if got := satAdd(maxDuration-1, 2); got != maxDuration {
		t.Errorf("satAdd = %v", got)
	}
	l := &link{cfg: LinkConfig{Bandwidth: 1}}
	if got := l.serialize(1 << 62); got != maxDuration {
		t.Errorf("serialize(2^62 bytes at 1 bit/s) = %v", got)
	}
	l = &link{cfg: LinkConfig{Bandwidth: math.MaxInt64}, free: maxDuration}
	if got := l.backlog(0); got != math.MaxInt64 {
		t.Errorf("backlog = %d", got)
	}
	if got := (LinkStats{}).AvgQueueBytes(); got != 0 {
		t.Errorf("AvgQueueBytes with no elapsed time = %v", got)
	}
}
