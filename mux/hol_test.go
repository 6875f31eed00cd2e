package mux

import (
	"fmt"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
	"github.com/havenproto/haven/wire"
)

// timedEnd writes small messages on a channel at fixed times, on top of a
// simEnd: message i is written at start+i*every.
type timedEnd struct {
	simEnd
	id     uint32
	start  time.Time
	every  time.Duration
	count  int
	next   int
	size   int
	sentAt []time.Time
}

func (e *timedEnd) due(now time.Time) time.Time { return e.start.Add(time.Duration(e.next) * e.every) }

func (e *timedEnd) Poll(b []byte, now time.Time) int {
	for e.next < e.count && !now.Before(e.due(now)) {
		msg := make([]byte, e.size)
		fillPattern(msg, keyOf("small"), uint64(e.next*e.size))
		if n, err := e.a.s.Write(e.id, msg); n != len(msg) || err != nil {
			e.a.fail(err)
		}
		e.sentAt = append(e.sentAt, e.due(now))
		e.next++
	}
	return e.simEnd.Poll(b, now)
}

func (e *timedEnd) Deadline() time.Time {
	d := e.simEnd.Deadline()
	if e.next < e.count {
		if t := e.due(time.Time{}); d.IsZero() || t.Before(d) {
			d = t
		}
	}
	return d
}

// TestHeadOfLine: beside a bulk channel on a path with 5 % loss, a channel
// of small messages is delayed only by its own losses. A message that no
// loss of its own channel can explain is readable the moment its packet
// arrives (no head-of-line blocking at the receiver), and it leaves the
// sender within three round trips: it shares the congestion window with
// the bulk channel at the same priority, and each loss episode closes the
// window for up to a round trip while the reduced window drains. It runs
// over several loss patterns (seeds): the sender-side wait depends on how
// losses cluster, and one pattern alone says little.
func TestHeadOfLine(t *testing.T) {
	for _, seed := range []uint64{31, 1, 2, 3, 4, 5, 6, 7, 8} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { holRun(t, seed) })
	}
}

func holRun(t *testing.T, seed uint64) {
	const (
		delay   = 50 * time.Millisecond
		msgSize = 100
		count   = 400
		every   = 10 * time.Millisecond
	)
	link := netsim.LinkConfig{Delay: delay, Loss: 0.05, MTU: ethernetMTU}
	net := netsim.New(seed, link, link)
	a, b := pair(t, Config{}, Config{}, net.Now())
	appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
	small, err := a.OpenStream("small", 3)
	if err != nil {
		t.Fatal(err)
	}
	appB.expect["small"] = msgSize * count
	appB.expect["bulk"] = 64 * mib
	appA.send("bulk", 3, 64*mib) // same priority: independence is not bought by priority

	// Byte ranges of the small channel lost on the way, with the time.
	type loss struct {
		at       time.Time
		from, to uint64
	}
	var losses []loss
	// First send and first delivery of the packet that carried each
	// message's last byte.
	firstSent := make([]time.Time, count)
	delivered := make([]time.Time, count)
	net.Tap = func(dir int, pkt []byte, at time.Time, ev netsim.Event) {
		if dir != 0 {
			return
		}
		var h wire.Header
		if h.Parse(pkt) != nil || h.Channel != small {
			return
		}
		var r wire.MessageReader
		r.Reset(pkt[:len(pkt)-simTag], a.align)
		for r.Next() {
			var m wire.Stream
			if r.Header().ID != wire.MsgStream || m.Parse(r.Message()) != nil {
				continue
			}
			from := uint64(m.Offset) // the test stream stays below 4 GiB
			to := from + uint64(len(m.Data))
			switch ev {
			case netsim.EventLost, netsim.EventBurstLost, netsim.EventQueueDropped:
				losses = append(losses, loss{at, from, to})
			case netsim.EventSent, netsim.EventDelivered:
				times := firstSent
				if ev == netsim.EventDelivered {
					times = delivered
				}
				for i := from / msgSize; i < count && (i+1)*msgSize <= to; i++ {
					if (i+1)*msgSize > from && times[i].IsZero() {
						times[i] = at
					}
				}
			}
		}
	}
	arrived := make([]time.Time, count)
	appB.progress = func(j *streamJob, now time.Time) {
		if j.key != keyOf("small") {
			return
		}
		for i := 0; i < count && uint64((i+1)*msgSize) <= j.read; i++ {
			if arrived[i].IsZero() {
				arrived[i] = now
			}
		}
	}
	start := net.Now().Add(time.Second) // the bulk transfer is under way by then
	endA := &timedEnd{simEnd: simEnd{appA}, id: small, start: start, every: every, count: count, size: msgSize}
	smallDone := func() bool { return appA.err != nil || appB.err != nil || !arrived[count-1].IsZero() }
	if err := net.Run(endA, simEnd{appB}, smallDone, time.Hour); err != nil {
		t.Fatal(err)
	}
	if appA.err != nil || appB.err != nil {
		t.Fatal(appA.err, appB.err)
	}
	bulkLost := a.Stats().PacketsLost
	clean, blocked := 0, 0
	var worstBlock, worstWait, worstLat time.Duration
	for i := 0; i < count; i++ {
		sent := endA.sentAt[i]
		// Own losses that can hold message i back: a lost range of the small
		// channel at or before the message, lost before the message arrived
		// and not yet repaired when it was written (the reader had not got
		// past the lost bytes by then).
		explained := false
		for _, l := range losses {
			repaired := arrived[min(int((l.to-1)/msgSize), count-1)]
			if l.from < uint64((i+1)*msgSize) && l.at.Before(arrived[i]) && repaired.After(sent) {
				explained = true
				break
			}
		}
		if explained {
			continue
		}
		clean++
		// Delivery: the reader gets the message the moment its packet
		// arrives. Any wait here would be head-of-line blocking.
		if block := arrived[i].Sub(delivered[i]); block != 0 {
			blocked++
			worstBlock = max(worstBlock, block)
		}
		worstWait = max(worstWait, firstSent[i].Sub(sent))
		worstLat = max(worstLat, arrived[i].Sub(sent))
	}
	t.Logf("%d small-channel losses, %d session losses; %d of %d messages unaffected by own losses: "+
		"worst wait to be sent %v (congestion window shared with the bulk channel), worst latency %v",
		len(losses), bulkLost, clean, count, worstWait, worstLat)
	if clean < count/2 {
		t.Fatalf("only %d clean messages: the test measures too little", clean)
	}
	if blocked > 0 {
		t.Fatalf("%d messages waited at the receiver after arriving (worst %v): head-of-line blocking", blocked, worstBlock)
	}
	// Sending is never starved: a clean message leaves within three round
	// trips (consecutive loss episodes, each closing the reduced window
	// for up to a round trip).
	if worstWait > 3*2*delay {
		t.Fatalf("a message waited %v to be sent", worstWait)
	}
}
