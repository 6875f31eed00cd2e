package netsim

import (
	"fmt"
	"math"
	"time"
)

// DefaultReorderDelay is the extra delay of a reordered packet when
// LinkConfig.Reorder is set and LinkConfig.ReorderDelay is zero.
const DefaultReorderDelay = 10 * time.Millisecond

// Window is a span of simulated time, relative to [Start]: Start is
// included, End is not.
type Window struct {
	Start, End time.Duration
}

// contains reports whether t (relative to Start) lies in [w.Start, w.End).
func (w Window) contains(t time.Duration) bool { return t >= w.Start && t < w.End }

// LinkConfig describes one direction of the simulated path. Every field is
// optional and its zero value turns the impairment off; probabilities are
// per packet, in [0, 1]. The zero LinkConfig is a perfect link: no delay,
// no loss, infinite bandwidth.
type LinkConfig struct {
	// Delay is the one-way propagation delay added to every packet.
	Delay time.Duration
	// Jitter adds a uniform extra delay in [0, Jitter) to each packet
	// independently. Jitter larger than the gap between packets reorders
	// them.
	Jitter time.Duration
	// Reorder is the probability that a packet is held back by an extra
	// ReorderDelay, which reorders it even without jitter.
	Reorder float64
	// ReorderDelay is the extra delay of a reordered packet; zero means
	// DefaultReorderDelay.
	ReorderDelay time.Duration

	// Loss is the probability that a packet is lost, independently of
	// every other packet.
	Loss float64
	// BurstEnter turns on the Gilbert–Elliott burst-loss model: it is the
	// probability, per packet, of moving from the good state to the bad
	// state. The state is updated before each packet's loss is decided,
	// for every packet that got past the MTU, blackouts and queue.
	BurstEnter float64
	// BurstExit is the probability, per packet, of moving from the bad
	// state back to the good state; with BurstLoss 1 the mean burst length
	// is 1/BurstExit packets. Zero means the bad state is never left.
	BurstExit float64
	// BurstLoss is the loss probability in the bad state; zero means 1.
	// (The good state loses nothing beyond Loss.)
	BurstLoss float64

	// Duplicate is the probability that a packet is delivered twice; the
	// copy gets its own corruption, delay, jitter and reordering.
	Duplicate float64
	// Corrupt is the probability that a delivered copy has 1 to 3 distinct
	// random bits flipped (never in the sender's buffer). Empty packets are
	// never corrupted.
	Corrupt float64

	// Bandwidth is the bottleneck rate in bits per second; zero means
	// infinite (no serialization delay, no queue).
	Bandwidth int64
	// QueueBytes bounds the drop-tail FIFO in front of the bottleneck: the
	// bytes not yet serialized, including what is left of the packet on the
	// wire. A packet that would push the backlog above QueueBytes is
	// dropped. Zero means an unbounded queue. Ignored without Bandwidth.
	QueueBytes int

	// MTU is the largest packet the link carries; longer packets are
	// dropped. Zero means no limit.
	MTU int

	// Blackouts are spans of time, relative to Start, during which every
	// packet entering the link is dropped. Packets already in flight when a
	// blackout begins are still delivered.
	Blackouts []Window
}

// validate panics with a descriptive message when c is not a valid
// configuration.
func (c *LinkConfig) validate(dir int) {
	bad := func(field string, v any) {
		panic(fmt.Sprintf("netsim: direction %d: invalid LinkConfig.%s %v", dir, field, v))
	}
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"Reorder", c.Reorder}, {"Loss", c.Loss}, {"BurstEnter", c.BurstEnter},
		{"BurstExit", c.BurstExit}, {"BurstLoss", c.BurstLoss},
		{"Duplicate", c.Duplicate}, {"Corrupt", c.Corrupt},
	} {
		if !(p.v >= 0 && p.v <= 1) { // also rejects NaN
			bad(p.name, p.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Delay", c.Delay}, {"Jitter", c.Jitter}, {"ReorderDelay", c.ReorderDelay}} {
		if d.v < 0 {
			bad(d.name, d.v)
		}
	}
	if c.Bandwidth < 0 {
		bad("Bandwidth", c.Bandwidth)
	}
	if c.QueueBytes < 0 {
		bad("QueueBytes", c.QueueBytes)
	}
	if c.MTU < 0 {
		bad("MTU", c.MTU)
	}
	for _, w := range c.Blackouts {
		if w.End < w.Start {
			bad("Blackouts", w)
		}
	}
	// The worst-case delivery delay must not overflow time.Duration.
	if c.Delay > math.MaxInt64/4 || c.Jitter > math.MaxInt64/4 || c.ReorderDelay > math.MaxInt64/4 {
		bad("Delay/Jitter/ReorderDelay", "too large")
	}
}

// LinkStats counts what happened to the packets of one direction. Packets
// are counted when they enter the link, so drops are counted at send time;
// copies are counted when they are delivered. Once everything in flight is
// delivered,
//
//	Delivered = Sent - Lost - BurstLost - QueueDropped - MTUDropped - BlackoutDropped + Duplicated
type LinkStats struct {
	Sent            int64 // packets handed to Send
	Delivered       int64 // copies handed to Receive (duplicates included)
	Lost            int64 // dropped by independent random loss
	BurstLost       int64 // dropped in the Gilbert–Elliott bad state
	QueueDropped    int64 // dropped because the bottleneck queue was full
	MTUDropped      int64 // dropped for being longer than the MTU
	BlackoutDropped int64 // dropped because they were sent during a blackout
	Duplicated      int64 // extra copies scheduled
	Corrupted       int64 // copies scheduled with flipped bits
	InFlight        int64 // copies scheduled but not yet delivered

	BytesSent      int64 // bytes handed to Send
	BytesDelivered int64 // bytes handed to Receive

	// MaxQueueBytes is the largest bottleneck backlog seen, in bytes, just
	// after a packet joined the queue; it never exceeds a non-zero
	// QueueBytes.
	MaxQueueBytes int
	// QueueByteSeconds is the time integral of the bottleneck backlog, in
	// byte-seconds, from Start to the current time (the backlog drains
	// linearly at the link rate between packets).
	QueueByteSeconds float64
	// Elapsed is the simulated time the integral covers: Now() - Start.
	Elapsed time.Duration
}

// AvgQueueBytes is the time-averaged bottleneck backlog in bytes.
func (s LinkStats) AvgQueueBytes() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return s.QueueByteSeconds / s.Elapsed.Seconds()
}

// Event names what happened to a packet, for [Network.Tap].
type Event uint8

// Events reported to Tap. Every packet handed to Send yields EventSent
// followed by either one drop event or, per copy, optional EventDuplicated
// and EventCorrupted at send time and EventDelivered at delivery time.
const (
	EventSent            Event = iota // entered the link (pkt: the sender's bytes)
	EventMTUDropped                   // dropped: longer than the MTU
	EventBlackoutDropped              // dropped: sent during a blackout
	EventQueueDropped                 // dropped: bottleneck queue full
	EventBurstLost                    // dropped: Gilbert–Elliott bad state
	EventLost                         // dropped: independent random loss
	EventDuplicated                   // an extra copy was scheduled (pkt: the copy)
	EventCorrupted                    // a copy was scheduled with flipped bits (pkt: the corrupted copy)
	EventDelivered                    // handed to the receiver (at: delivery time)
)

var eventNames = [...]string{
	EventSent:            "sent",
	EventMTUDropped:      "mtu-dropped",
	EventBlackoutDropped: "blackout-dropped",
	EventQueueDropped:    "queue-dropped",
	EventBurstLost:       "burst-lost",
	EventLost:            "lost",
	EventDuplicated:      "duplicated",
	EventCorrupted:       "corrupted",
	EventDelivered:       "delivered",
}

func (e Event) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("Event(%d)", uint8(e))
}
