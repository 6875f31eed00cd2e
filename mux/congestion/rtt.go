package congestion

import "time"

const (
	// DefaultInitialRTT is the RTT assumed before the first sample: 333 ms,
	// RFC 9002 §6.2.2, which makes the first probe timeout about 1 s.
	DefaultInitialRTT = 333 * time.Millisecond

	// DefaultMaxAckDelay is the peer's max_ack_delay assumed until
	// [RTTStats.SetMaxAckDelay] is called: 25 ms, the QUIC default
	// (RFC 9000 §18.2).
	DefaultMaxAckDelay = 25 * time.Millisecond

	// Granularity is the timer granularity, kGranularity of RFC 9002
	// §6.1.2: the smallest variance term of a probe timeout and the smallest
	// loss delay.
	Granularity = time.Millisecond

	// PersistentCongestionThreshold is kPersistentCongestionThreshold of
	// RFC 9002 §7.6.1: persistent congestion needs losses spanning this many
	// probe timeouts.
	PersistentCongestionThreshold = 3
)

// RTTStats estimates the round-trip time of a path as RFC 9002 §5 specifies:
// the latest sample, the minimum over the connection (min_rtt), an
// exponentially weighted mean (smoothed_rtt) and mean deviation (rttvar).
// The peer's ACK delay is subtracted from samples, capped by its
// max_ack_delay once the handshake is confirmed, and never so far that a
// sample would fall below min_rtt.
//
// The zero value is ready to use, with [DefaultInitialRTT] and
// [DefaultMaxAckDelay]; [NewRTTStats] sets another initial RTT. RTTStats is
// a plain value: copy it to snapshot it. It does no I/O and never allocates.
type RTTStats struct {
	initialRTT     time.Duration // 0 means DefaultInitialRTT
	maxAckDelay    time.Duration
	maxAckDelaySet bool // false means DefaultMaxAckDelay

	hasSample bool
	latest    time.Duration
	min       time.Duration
	smoothed  time.Duration
	rttvar    time.Duration
}

// NewRTTStats returns an estimator that assumes initialRTT until the first
// sample (RFC 9002 §6.2.2 allows a value remembered from an earlier
// connection to the same peer). A non-positive initialRTT means
// [DefaultInitialRTT].
func NewRTTStats(initialRTT time.Duration) RTTStats {
	var r RTTStats
	r.SetInitialRTT(initialRTT)
	return r
}

// SetInitialRTT changes the RTT assumed before the first sample; it has no
// effect once a sample has been taken. A non-positive value means
// [DefaultInitialRTT].
func (r *RTTStats) SetInitialRTT(d time.Duration) {
	if d <= 0 {
		d = 0
	}
	r.initialRTT = d
}

// InitialRTT returns the RTT assumed before the first sample.
func (r *RTTStats) InitialRTT() time.Duration {
	if r.initialRTT <= 0 {
		return DefaultInitialRTT
	}
	return r.initialRTT
}

// SetMaxAckDelay records the peer's max_ack_delay, the cap applied to
// reported ACK delays once the handshake is confirmed (RFC 9002 §5.3).
// Negative values are treated as zero.
func (r *RTTStats) SetMaxAckDelay(d time.Duration) {
	r.maxAckDelay = max(d, 0)
	r.maxAckDelaySet = true
}

// MaxAckDelay returns the peer's max_ack_delay as last set, or
// [DefaultMaxAckDelay].
func (r *RTTStats) MaxAckDelay() time.Duration {
	if !r.maxAckDelaySet {
		return DefaultMaxAckDelay
	}
	return r.maxAckDelay
}

// Update takes one RTT sample (RFC 9002 §5.1): latest is the time from
// sending the largest newly acknowledged packet to receiving its ACK, and
// ackDelay the delay the peer reported in that ACK. The engine takes a
// sample only when the largest acknowledged packet is newly acknowledged
// and at least one newly acknowledged packet was ack-eliciting.
//
// The first sample initialises every estimate (§5.3):
//
//	min_rtt = smoothed_rtt = latest, rttvar = latest/2
//
// Later samples update min_rtt with the raw sample, then adjust for the ACK
// delay and fold the result into the averages:
//
//	ack_delay = min(ack_delay, max_ack_delay)   if handshakeConfirmed
//	adjusted  = latest - ack_delay              if latest >= min_rtt + ack_delay, else latest
//	rttvar    = 3/4 rttvar + 1/4 |smoothed_rtt - adjusted|
//	smoothed  = 7/8 smoothed_rtt + 1/8 adjusted
//
// Before the handshake is confirmed the peer's max_ack_delay is not applied
// (§5.3: the peer may not have received it yet); the engine passes a zero
// ackDelay where it wants the delay ignored (Initial packets in QUIC). A
// negative latest is a clock error and is ignored; a negative ackDelay
// counts as zero.
func (r *RTTStats) Update(latest, ackDelay time.Duration, handshakeConfirmed bool) {
	if latest < 0 {
		return
	}
	ackDelay = max(ackDelay, 0)
	r.latest = latest
	if !r.hasSample {
		r.hasSample = true
		r.min = latest
		r.smoothed = latest
		r.rttvar = latest / 2
		return
	}
	r.min = min(r.min, latest)
	if handshakeConfirmed {
		ackDelay = min(ackDelay, r.MaxAckDelay())
	}
	adjusted := latest
	if latest >= r.min+ackDelay {
		adjusted = latest - ackDelay
	}
	dev := r.smoothed - adjusted
	if dev < 0 {
		dev = -dev
	}
	r.rttvar = (3*r.rttvar + dev) / 4
	r.smoothed = (7*r.smoothed + adjusted) / 8
}

// HasSample reports whether Update has taken at least one sample.
func (r *RTTStats) HasSample() bool { return r.hasSample }

// Latest returns the most recent raw sample (latest_rtt), or 0 before the
// first sample.
func (r *RTTStats) Latest() time.Duration { return r.latest }

// Min returns min_rtt, the smallest raw sample since the connection began
// (or since [RTTStats.OnPersistentCongestion]); 0 before the first sample.
func (r *RTTStats) Min() time.Duration { return r.min }

// Smoothed returns smoothed_rtt; before the first sample, the initial RTT
// (RFC 9002 §5.3).
func (r *RTTStats) Smoothed() time.Duration {
	if !r.hasSample {
		return r.InitialRTT()
	}
	return r.smoothed
}

// Var returns rttvar, the mean deviation of the samples; before the first
// sample, half the initial RTT (RFC 9002 §5.3).
func (r *RTTStats) Var() time.Duration {
	if !r.hasSample {
		return r.InitialRTT() / 2
	}
	return r.rttvar
}

// PTO returns the probe timeout period of RFC 9002 §6.2.1:
//
//	smoothed_rtt + max(4*rttvar, kGranularity) + maxAckDelay
//
// The engine passes the peer's max_ack_delay for application data and 0
// where the peer acknowledges immediately (QUIC's Initial and Handshake
// spaces); it doubles the result for each consecutive unanswered probe.
// Before the first sample this is 3 × the initial RTT plus maxAckDelay.
func (r *RTTStats) PTO(maxAckDelay time.Duration) time.Duration {
	return r.Smoothed() + max(4*r.Var(), Granularity) + max(maxAckDelay, 0)
}

// LossDelay returns the time threshold of RFC 9002 §6.1.2: a packet sent
// this long before a later acknowledged one is declared lost.
//
//	max(9/8 * max(smoothed_rtt, latest_rtt), kGranularity)
func (r *RTTStats) LossDelay() time.Duration {
	d := max(r.Smoothed(), r.latest)
	return max(d+d/8, Granularity)
}

// PersistentCongestionDuration returns the span of RFC 9002 §7.6.1: losses
// of ack-eliciting packets spanning at least this long, with no packet
// acknowledged in between, establish persistent congestion.
//
//	(smoothed_rtt + max(4*rttvar, kGranularity) + max_ack_delay) * kPersistentCongestionThreshold
func (r *RTTStats) PersistentCongestionDuration(maxAckDelay time.Duration) time.Duration {
	return r.PTO(maxAckDelay) * PersistentCongestionThreshold
}

// OnPersistentCongestion sets min_rtt to the latest sample, as RFC 9002
// §5.2 recommends once persistent congestion is established: the path may
// have changed, and an old, too-small min_rtt would make the ACK-delay
// adjustment subtract too little forever.
func (r *RTTStats) OnPersistentCongestion() {
	if r.hasSample {
		r.min = r.latest
	}
}
