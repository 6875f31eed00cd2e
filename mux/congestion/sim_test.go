package congestion

import (
	"testing"
	"time"
)

// bottleneck is a fluid model of one flow through a fixed-rate link with a
// drop-tail queue, on fake time. Packets are counters: the sender emits
// full-size packets while the controller (and the pacer, if any) allow, the
// link forwards one packet per service time, and each forwarded packet is
// acknowledged on its own after the propagation delay. A dropped packet is
// declared lost when three later packets have been acknowledged (RFC 9002
// §6.1.1, kPacketThreshold), all losses detected by one ACK forming one
// congestion event. Time advances in steps of one service time.
type bottleneck struct {
	c      *Cubic
	pacer  *Pacer
	rtt    RTTStats
	serve  time.Duration // service time per packet (link rate = 1/serve)
	prop   time.Duration // round-trip propagation delay
	buffer int           // queue capacity, packets

	now      time.Time
	seq      uint64
	queue    []simPacket // waiting at the link, FIFO
	acks     []simAck    // on the way back, in arrival order
	dropped  []simPacket // lost, not yet detected
	inflight int         // bytes
	lastAck  time.Time

	// statistics since measuring began
	measuring bool
	delivered int
	ticks     int
	fullTicks int
	queueSum  int
	minQueue  int
	losses    int
}

type simPacket struct {
	seq  uint64
	sent time.Time
}

type simAck struct {
	simPacket
	at time.Time
}

func (b *bottleneck) tick(t *testing.T) {
	// The link forwards the packet at the head of the queue.
	if len(b.queue) > 0 {
		p := b.queue[0]
		b.queue = b.queue[1:]
		b.acks = append(b.acks, simAck{p, b.now.Add(b.serve + b.prop)})
		if b.measuring {
			b.delivered++
		}
	}
	// ACKs that have arrived.
	for len(b.acks) > 0 && !b.acks[0].at.After(b.now) {
		a := b.acks[0]
		b.acks = b.acks[1:]
		b.rtt.Update(b.now.Sub(a.sent), 0, true)
		b.c.OnAck(b.now, mds, a.sent, &b.rtt, b.inflight)
		b.inflight -= mds
		b.lastAck = b.now
		lostBytes, prior := 0, b.inflight
		var lastLost time.Time
		for len(b.dropped) > 0 && b.dropped[0].seq+3 <= a.seq {
			lostBytes += mds
			lastLost = b.dropped[0].sent
			b.dropped = b.dropped[1:]
		}
		if lostBytes > 0 {
			b.inflight -= lostBytes
			b.c.OnCongestionEvent(b.now, lastLost, lostBytes, prior)
			if b.measuring {
				b.losses++
			}
		}
	}
	if b.inflight > 0 && b.now.Sub(b.lastAck) > 2*time.Second {
		t.Fatalf("flow stalled at %v: inflight %d, window %d", b.now, b.inflight, b.c.Window())
	}
	// The sender.
	for b.c.CanSend(b.inflight) {
		if b.pacer != nil && b.pacer.TimeUntilSend(b.now, b.c.PacingRate(&b.rtt)).After(b.now) {
			break
		}
		b.seq++
		p := simPacket{b.seq, b.now}
		b.inflight += mds
		b.c.OnPacketSent(b.now, mds, b.inflight)
		if b.pacer != nil {
			b.pacer.OnSend(b.now, mds)
		}
		if len(b.queue) < b.buffer {
			b.queue = append(b.queue, p)
		} else {
			b.dropped = append(b.dropped, p)
		}
	}
	if b.measuring {
		b.ticks++
		q := len(b.queue)
		b.queueSum += q
		b.minQueue = min(b.minQueue, q)
		if q >= b.buffer {
			b.fullTicks++
		}
	}
	b.now = b.now.Add(b.serve)
}

func TestBottleneckUtilisation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		serve   time.Duration // 1 ms = 1000 packets/s ≈ 9.6 Mbit/s at 1200 bytes
		prop    time.Duration
		buffer  int // packets
		paced   bool
		warmup  time.Duration
		measure time.Duration
	}{
		// Buffer = BDP (40 packets).
		{"10Mbit-40ms-1BDP", time.Millisecond, 40 * ms, 40, false, 20 * time.Second, 40 * time.Second},
		{"10Mbit-40ms-1BDP-paced", time.Millisecond, 40 * ms, 40, true, 20 * time.Second, 40 * time.Second},
		// 96 Mbit/s, 20 ms: BDP 200 packets, buffer half of it.
		{"96Mbit-20ms-halfBDP-paced", 100 * time.Microsecond, 20 * ms, 100, true, 10 * time.Second, 20 * time.Second},
		// A shallow buffer, a quarter of the BDP.
		{"10Mbit-80ms-quarterBDP-paced", time.Millisecond, 80 * ms, 20, true, 20 * time.Second, 60 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &bottleneck{
				c:       newTestCubic(CubicConfig{Unpaced: !tc.paced}),
				serve:   tc.serve,
				prop:    tc.prop,
				buffer:  tc.buffer,
				now:     t0,
				lastAck: t0,
			}
			if tc.paced {
				p := NewPacer(mds, 0)
				b.pacer = &p
			}
			for end := t0.Add(tc.warmup); b.now.Before(end); {
				b.tick(t)
			}
			b.measuring, b.minQueue = true, tc.buffer
			for end := b.now.Add(tc.measure); b.now.Before(end); {
				b.tick(t)
			}
			util := float64(b.delivered) / float64(b.ticks)
			full := float64(b.fullTicks) / float64(b.ticks)
			avgQ := float64(b.queueSum) / float64(b.ticks)
			t.Logf("utilisation %.3f, queue full %.1f%% of the time, mean queue %.1f/%d, min %d, %d congestion events, window %d packets",
				util, 100*full, avgQ, tc.buffer, b.minQueue, b.losses, b.c.Window()/mds)
			if util < 0.9 {
				t.Errorf("utilisation %.3f < 0.9", util)
			}
			if full > 0.25 {
				t.Errorf("queue full %.1f%% of the time", 100*full)
			}
			if avgQ > 0.9*float64(tc.buffer) || b.minQueue > tc.buffer/2 {
				t.Errorf("standing queue: mean %.1f, min %d of %d", avgQ, b.minQueue, tc.buffer)
			}
			if b.losses == 0 {
				t.Error("no congestion events: the link was never filled")
			}
		})
	}
}
