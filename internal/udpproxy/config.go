package udpproxy

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

const (
	// DefaultReorderDelay is the extra delay of a reordered datagram when
	// Config.ReorderDelay is zero.
	DefaultReorderDelay = 5 * time.Millisecond
	// DefaultMaxQueue bounds the delayed datagrams when Config.MaxQueue is
	// zero.
	DefaultMaxQueue = 4096
	// DefaultRateQueue is Config.RateQueue when zero: 256 KiB, about 100
	// ms at 20 Mbit/s.
	DefaultRateQueue = 256 << 10
	// MinRotatePort is the shortest rotation period accepted: rotating
	// faster would only churn sockets and goroutines.
	MinRotatePort = 10 * time.Millisecond
	// RotateGrace is how long a replaced upstream socket keeps relaying
	// replies back to the client after a rotation.
	RotateGrace = time.Second
	// MaxClients bounds the client sessions (and so the upstream sockets);
	// the least recently used session is evicted beyond it.
	MaxClients = 64
)

// maxRetired bounds the replaced upstream sockets kept open per session
// during their grace period; the oldest is closed early beyond it.
const maxRetired = 8

// Config sets the impairments. Each field is optional and its zero value
// turns the impairment off, so the zero Config is a transparent relay.
// Probabilities are per datagram, in [0, 1], and apply to both directions
// independently.
type Config struct {
	// Loss is the probability that a datagram is dropped.
	Loss float64
	// Duplicate is the probability that a datagram is sent twice; each
	// copy then gets its own reordering and corruption decision.
	Duplicate float64
	// Reorder is the probability that a copy is held back by an extra
	// ReorderDelay while later datagrams pass it.
	Reorder float64
	// Corrupt is the probability that a copy has 1 to 3 distinct random
	// bits flipped. The length never changes.
	Corrupt float64

	// ReorderDelay is the extra delay of a reordered copy; zero means
	// DefaultReorderDelay.
	ReorderDelay time.Duration
	// Delay is the base one-way delay of every datagram; zero forwards
	// immediately from the reading goroutine.
	Delay time.Duration
	// RotatePort, if positive, is the period at which every session gets
	// a new upstream socket (a new source port as seen by the target).
	// Zero disables rotation; otherwise it must be at least MinRotatePort.
	RotatePort time.Duration
	// Seed seeds the per-direction PCG generators that make every
	// decision.
	Seed uint64
	// MaxQueue bounds the delayed datagrams held at once; beyond it new
	// delayed copies are dropped and counted in DirStats.Dropped. Zero
	// means DefaultMaxQueue.
	MaxQueue int
	// Rate, if positive, caps each direction at so many bytes per second
	// (payload bytes), as a link of that speed would: datagrams wait their
	// turn on the virtual wire (before Delay), and one that would find
	// more than RateQueue bytes waiting ahead of it is dropped (counted in
	// DirStats.Dropped), as a router's full queue drops it.
	Rate float64
	// RateQueue is the bytes a rate-capped direction holds waiting; zero
	// means DefaultRateQueue.
	RateQueue int

	// Tap, if set, is shown every datagram the proxy reads, before any
	// impairment, with its direction (toTarget: client → target). It
	// runs on the reading goroutines, so it must be quick and safe for
	// concurrent use, and it must neither modify nor keep pkt. Tests use
	// it to count packets of a kind, such as handshake initiations.
	Tap func(toTarget bool, pkt []byte)
}

// validate reports a configuration that cannot be applied.
func (c Config) validate() error {
	for _, pr := range []struct {
		name string
		v    float64
	}{{"Loss", c.Loss}, {"Duplicate", c.Duplicate}, {"Reorder", c.Reorder}, {"Corrupt", c.Corrupt}} {
		if !(pr.v >= 0 && pr.v <= 1) { // also rejects NaN
			return fmt.Errorf("%s %v outside [0, 1]", pr.name, pr.v)
		}
	}
	switch {
	case c.ReorderDelay < 0:
		return errors.New("negative ReorderDelay")
	case c.Delay < 0:
		return errors.New("negative Delay")
	case c.RotatePort < 0:
		return errors.New("negative RotatePort")
	case c.RotatePort > 0 && c.RotatePort < MinRotatePort:
		return fmt.Errorf("RotatePort %v below %v", c.RotatePort, MinRotatePort)
	case c.MaxQueue < 0:
		return errors.New("negative MaxQueue")
	case !(c.Rate >= 0): // also rejects NaN
		return fmt.Errorf("Rate %v", c.Rate)
	case c.RateQueue < 0:
		return errors.New("negative RateQueue")
	}
	return nil
}

// withDefaults fills in the zero fields that have a non-zero default.
func (c Config) withDefaults() Config {
	if c.ReorderDelay == 0 {
		c.ReorderDelay = DefaultReorderDelay
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.RateQueue == 0 {
		c.RateQueue = DefaultRateQueue
	}
	return c
}

// DirStats counts what happened to the datagrams of one direction.
// Received, Lost, Duplicated, Reordered and Corrupted count decisions as
// they are made; Forwarded, Dropped and Failed count what became of the
// copies. Until Close, every copy ends up in exactly one of Forwarded,
// Dropped or Failed (or is still queued), so once the proxy is idle
// Received - Lost + Duplicated = Forwarded + Dropped + Failed. Counters
// move after the write returns, so a receiver may see a datagram before
// it is counted.
type DirStats struct {
	Received   uint64 // datagrams read from the socket
	Forwarded  uint64 // copies written successfully
	Lost       uint64 // datagrams dropped by the Loss decision or a blackout
	BlackedOut uint64 // of Lost, those dropped by a blackout (Proxy.Blackout)
	Duplicated uint64 // datagrams sent twice
	Reordered  uint64 // copies held back by ReorderDelay
	Corrupted  uint64 // copies with flipped bits
	Dropped    uint64 // delayed copies refused because the queue was full
	Failed     uint64 // copies whose write failed or whose session was gone
}

// Stats is a snapshot of the proxy's counters.
type Stats struct {
	ToTarget DirStats // client → target
	ToClient DirStats // target → client
	// Rotations counts upstream sockets replaced by port rotation.
	Rotations uint64
}

// counters is the live, concurrently updated form of DirStats.
type counters struct {
	received, forwarded, lost, blackedOut, duplicated, reordered, corrupted, dropped, failed atomic.Uint64
}

// snapshot reads the counters (each atomically, not all at one instant).
func (c *counters) snapshot() DirStats {
	return DirStats{
		Received:   c.received.Load(),
		Forwarded:  c.forwarded.Load(),
		Lost:       c.lost.Load(),
		BlackedOut: c.blackedOut.Load(),
		Duplicated: c.duplicated.Load(),
		Reordered:  c.reordered.Load(),
		Corrupted:  c.corrupted.Load(),
		Dropped:    c.dropped.Load(),
		Failed:     c.failed.Load(),
	}
}
