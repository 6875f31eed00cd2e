package congestion

import (
	"math"
	"time"
)

// DefaultBurstPackets is the pacer's burst allowance, in full-size packets,
// when NewPacer is given zero: ten packets, the initial window of RFC 9002
// §7.2, which §7.7 names as a reasonable burst limit. It is also a typical
// GSO batch.
const DefaultBurstPackets = 10

// budgetEpsilon absorbs float rounding, in bytes, so that the instant
// returned by TimeUntilSend always has a full packet of budget.
const budgetEpsilon = 1e-3

// Pacer spreads sending over time (RFC 9002 §7.7) with a token budget: the
// budget fills at the pacing rate, up to a burst capacity of a few
// full-size packets, and each send spends its size. A sender that sends
// only when the budget holds a full packet therefore never sends more than
//
//	rate × elapsed + capacity
//
// bytes over any stretch of time, yet a sender that wakes up late finds
// several packets' worth of budget and can hand them to the kernel as one
// GSO batch of equal-size packets. After an idle period the budget is full,
// so the first burst of a flow leaves at once (the initial window goes out
// together, as §7.7 allows).
//
// Typical use, with cc a [Controller]:
//
//	at := pacer.TimeUntilSend(now, cc.PacingRate(&rtt))
//	if at.After(now) { arm a timer for at; return }
//	n := pacer.Budget(now) / packetSize  // packets that may leave now, as one batch
//	... for each packet sent: pacer.OnSend(now, size)
//
// A rate of 0 means no pacing: the budget is unlimited. The zero Pacer uses
// DefaultMaxDatagramSize and DefaultBurstPackets. Pacer is sans-I/O and
// never allocates.
type Pacer struct {
	mds          int // max datagram size, bytes; 0 means default
	burstPackets int // 0 means default
	rate         float64
	tokens       float64 // bytes; negative after a batch larger than the budget
	last         time.Time
	started      bool
	noRateBurst  bool // SetRateBurst(false): the allowance is the burst packets only
}

// SetRateBurst turns the BurstInterval part of the allowance on (the
// default) or off. The engine turns it off while it sends packets larger
// than a jumbo frame (loopback's, found by path MTU discovery): such
// packets are already a system call's worth each, and bursts of them
// overflowed the receiving side of a lossy loopback path (the head-of-line
// benchmark's small stream waited up to 27 ms at the 99th percentile
// instead of 1.5). Packets up to a jumbo frame keep it: without it a
// 9,000-byte path ran at two thirds of its speed.
func (p *Pacer) SetRateBurst(on bool) {
	p.noRateBurst = !on
	p.tokens = min(p.tokens, float64(p.Capacity()))
}

// NewPacer returns a pacer for packets of at most maxDatagramSize bytes that
// allows bursts of burstPackets such packets. Non-positive arguments mean
// DefaultMaxDatagramSize and DefaultBurstPackets.
func NewPacer(maxDatagramSize, burstPackets int) Pacer {
	return Pacer{mds: max(maxDatagramSize, 0), burstPackets: max(burstPackets, 0)}
}

func (p *Pacer) maxDatagramSize() int {
	if p.mds <= 0 {
		return DefaultMaxDatagramSize
	}
	return p.mds
}

// BurstInterval is how much sending at the pacing rate the burst
// allowance covers at least: a fast path gets bursts of a millisecond of
// its rate, not of ten packets. Linux sizes its TSO bursts the same way
// (tcp_tso_autosize: the rate shifted by sk_pacing_shift 10, about 1 ms),
// and quic-go's pacer likewise (twice its 1 ms minimum pacing delay).
// With a ten-packet allowance a sender at 1 GB/s and 1,452-byte packets
// could send ten packets per run of its engine and then had to wait a few
// microseconds for the next ten, through a timer: runs of ten packets,
// a timer firing for each, and GSO batches of ten instead of forty-four
// (issue #12). On slow paths ten packets stay the allowance.
const BurstInterval = time.Millisecond

// Capacity returns the burst allowance in bytes: the largest budget the
// pacer accumulates, the larger of the burst packets and BurstInterval at
// the current rate.
func (p *Pacer) Capacity() int {
	b := p.burstPackets
	if b <= 0 {
		b = DefaultBurstPackets
	}
	c := b * p.maxDatagramSize()
	if p.rate > 0 && !p.noRateBurst {
		c = max(c, int(min(p.rate*BurstInterval.Seconds(), MaxRateBurst)))
	}
	return c
}

// MaxRateBurst caps what BurstInterval adds to the allowance: 88 packets
// of 1,472 bytes (the largest on an IPv4 path with a 1,500-byte MTU,
// PROTOCOL.md §6.5), what the endpoint builds in one run (two GSO
// messages of 44). A cap short of a run ends every run on a pacer wait:
// at 64 packets of 1,452 bytes, the 64th packet of 1,472 waited, and bulk
// at MTU 1,500 ran 5–7 % slower (issue #12). Without the cap a loopback
// path (rates of gigabytes a second, 64 KiB packets) got bursts of
// megabytes that overflowed the receiving socket: bulk on loopback lost a
// sixth of its throughput, and a bulk transfer through a lossy proxy half
// of it.
const MaxRateBurst = 88 * 1472

// SetMaxDatagramSize changes the packet size the burst allowance and the
// send decision are counted in (after path MTU discovery).
func (p *Pacer) SetMaxDatagramSize(n int) {
	if n > 0 {
		p.mds = n
		p.tokens = min(p.tokens, float64(p.Capacity()))
	}
}

// refill brings the budget up to now at the current rate.
func (p *Pacer) refill(now time.Time) {
	if p.started && !now.After(p.last) {
		return // nothing elapsed: every packet of a run after its first
	}
	capacity := float64(p.Capacity())
	if !p.started {
		p.started = true
		p.tokens = capacity
		p.last = now
		return
	}
	if p.rate <= 0 {
		p.tokens = capacity
	} else {
		p.tokens = min(p.tokens+p.rate*now.Sub(p.last).Seconds(), capacity)
	}
	p.last = now
}

// SetRate sets the pacing rate in bytes per second from now on; the budget
// earned until now is credited at the previous rate. A non-positive rate
// turns pacing off.
func (p *Pacer) SetRate(now time.Time, rate float64) {
	p.refill(now)
	if rate <= 0 || math.IsNaN(rate) {
		rate = 0
	}
	p.rate = rate
}

// Rate returns the pacing rate in bytes per second (0 = no pacing).
func (p *Pacer) Rate() float64 { return p.rate }

// Budget returns how many bytes may be sent at now, at most Capacity. With
// pacing off it is math.MaxInt.
func (p *Pacer) Budget(now time.Time) int {
	p.refill(now)
	if p.rate <= 0 {
		return math.MaxInt
	}
	if p.tokens <= 0 {
		return 0
	}
	return int(p.tokens + budgetEpsilon)
}

// TimeUntilSend sets the pacing rate (as SetRate) and returns the earliest
// time, not before now, at which a full-size packet may be sent: now if the
// budget already holds one, else when the budget will have refilled to
// one. A non-positive rate turns pacing off and returns now.
func (p *Pacer) TimeUntilSend(now time.Time, rate float64) time.Time {
	p.SetRate(now, rate)
	if p.rate <= 0 {
		return now
	}
	deficit := float64(p.maxDatagramSize()) - p.tokens
	if deficit <= budgetEpsilon {
		return now
	}
	ns := math.Ceil(deficit / p.rate * 1e9)
	if ns >= math.MaxInt64/2 {
		ns = math.MaxInt64 / 2
	}
	return now.Add(time.Duration(ns))
}

// OnSend spends bytes of budget for a packet sent at now. A packet may be
// sent on a budget of less than its size (the rest of a GSO batch, or a
// probe the engine sends regardless); the budget then goes negative and
// later sends wait until it is repaid, so the long-run rate still holds.
func (p *Pacer) OnSend(now time.Time, bytes int) {
	p.refill(now)
	if p.rate <= 0 {
		return
	}
	p.tokens -= float64(bytes)
}
