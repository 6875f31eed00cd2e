package congestion

import (
	"math"
	"time"
)

// CUBIC constants, RFC 9438 §4.1 and §5.
const (
	// CubicC is C, the scaling constant of the cubic window function, in
	// packets per second cubed.
	CubicC = 0.4
	// CubicBeta is beta_cubic, the multiplicative decrease factor: a
	// congestion event leaves the window at 0.7 of its size (§4.6).
	CubicBeta = 0.7
	// cubicAlpha is alpha_cubic = 3(1-beta)/(1+beta) (§4.3): the additive
	// increase, in packets per RTT, that makes the Reno-friendly estimate
	// match Reno's average throughput given CUBIC's gentler decrease.
	cubicAlpha = 3 * (1 - CubicBeta) / (1 + CubicBeta)
	// cubicMaxTargetGrowth caps the target window at 1.5 × cwnd (§4.2).
	cubicMaxTargetGrowth = 1.5
)

// DefaultMaxWindow caps the congestion window when CubicConfig.MaxWindow is
// zero: 256 MiB, about 21 Gbit/s at 100 ms RTT. It only guards against an
// unbounded window; flow control limits real transfers long before.
const DefaultMaxWindow = 256 << 20

// CubicConfig configures a [Cubic] controller. The zero value is Haven's
// default: 1452-byte datagrams, the RFC 9002 initial window, a paced sender
// and HyStart++.
type CubicConfig struct {
	// MaxDatagramSize is the packet size windows are counted in; zero means
	// DefaultMaxDatagramSize.
	MaxDatagramSize int
	// InitialWindowPackets sets the initial window to this many packets.
	// Zero means the RFC 9002 §7.2 formula (see [InitialWindow]), which is
	// 10 packets at sizes up to 1472 bytes.
	InitialWindowPackets int
	// MinimumWindowPackets is the smallest window a reduction may leave;
	// zero means 2 (kMinimumWindow, RFC 9002 §7.2). Values below 2 are
	// raised to 2.
	MinimumWindowPackets int
	// MaxWindow caps the window in bytes; zero means DefaultMaxWindow.
	MaxWindow int
	// DisableHyStart turns HyStart++ off: the first slow start then lasts
	// until the first congestion event, as in RFC 9002.
	DisableHyStart bool
	// Unpaced declares that the engine does not pace. HyStart++ then limits
	// the window increase of one ACK to 8 packets (RFC 9406 §4.3, L = 8);
	// a paced sender takes all acknowledged bytes (L = infinity).
	Unpaced bool
}

// Cubic is the CUBIC congestion controller of RFC 9438 for a QUIC-style
// transport (RFC 9002 §7), with HyStart++ (RFC 9406) as its first slow
// start. It implements [Controller]. The window is kept in bytes as a
// float64; CUBIC's formulas, which the RFC states in packets (segments),
// are scaled by the maximum datagram size.
//
// Phases:
//
//   - Slow start (cwnd < ssthresh): every acknowledged byte grows the
//     window (RFC 9002 §7.3.1), in the first slow start subject to
//     HyStart++, which may leave early through Conservative Slow Start.
//   - Recovery (RFC 9002 §7.3.2): a congestion event records its time; ACKs
//     for packets sent before it do not grow the window, and losses of such
//     packets do not reduce it again.
//   - Congestion avoidance: the window follows the cubic function of the
//     time t since the current epoch began (§4.2), concave below W_max and
//     convex above it, unless the Reno-friendly estimate W_est is larger
//     (§4.3).
//
// In congestion avoidance, with cwnd_epoch the window when the epoch began:
//
//	W_cubic(t) = C × (t − K)³ + W_max,   K = ∛((W_max − cwnd_epoch) / C)
//
// Each ACK moves cwnd toward the target W_cubic(t + RTT), clamped to
// [cwnd, 1.5 × cwnd], by (target − cwnd)/cwnd per acknowledged packet
// (§4.2, §4.4, §4.5).
//
// A congestion event sets W_max (lowered by fast convergence, §4.7, when the
// window had not regained the previous W_max), ssthresh = max(β × cwnd,
// minimum window) and cwnd = ssthresh (§4.6); the epoch restarts at the
// first ACK after recovery. The state before the reduction is kept so that
// OnSpuriousCongestion can restore it exactly (§4.9). Persistent congestion
// collapses the window to the minimum (RFC 9002 §7.6.2, RFC 9438 §4.8).
//
// The window does not grow while the sender is application limited
// (RFC 9438 §5.8, RFC 9002 §7.8); the cubic curve is shifted by the time
// spent so, rather than jumping ahead when sending resumes.
//
// Cubic never allocates after NewCubic (or Init) and is not safe for
// concurrent use.
type Cubic struct {
	mds         int     // max datagram size, bytes
	minWindow   float64 // bytes
	maxWindow   float64 // bytes
	initPackets int     // CubicConfig.InitialWindowPackets
	minPackets  int
	hystartOn   bool
	paced       bool
	rounds      RoundCounter
	s           cubicState // everything an undo restores
	saved       cubicState // s before the last reduction
	savedValid  bool
	pristine    bool // no ACK has grown and no loss has reduced the window yet
}

// cubicState is the part of Cubic that a congestion event changes and a
// spurious-loss undo restores.
type cubicState struct {
	cwnd     float64 // bytes
	ssthresh float64 // bytes; +Inf until the first reduction

	recoveryStarted bool
	recoveryStart   time.Time // congestion_recovery_start_time

	epochStarted bool      // a congestion avoidance epoch is under way
	epochStart   time.Time // t_epoch, shifted by application-limited time
	lastAck      time.Time // last ACK seen in the epoch
	k            float64   // K, seconds
	wMax         float64   // W_max, bytes
	wMaxSet      bool      // false until a reduction or a HyStart++ exit sets W_max
	cwndPrior    float64   // cwnd before the last reduction, bytes
	wEst         float64   // Reno-friendly estimate, bytes

	hystart hyStart
}

var _ Controller = (*Cubic)(nil)

// NewCubic returns a CUBIC controller in slow start with the initial window.
func NewCubic(cfg CubicConfig) *Cubic {
	c := new(Cubic)
	c.Init(cfg)
	return c
}

// Init makes c what NewCubic(cfg) returns, in place: for an owner that
// keeps the controller inside its own struct instead of allocating it.
func (c *Cubic) Init(cfg CubicConfig) {
	*c = Cubic{
		initPackets: max(cfg.InitialWindowPackets, 0),
		minPackets:  2,
		hystartOn:   !cfg.DisableHyStart,
		paced:       !cfg.Unpaced,
		pristine:    true,
	}
	if cfg.MinimumWindowPackets > 2 {
		c.minPackets = cfg.MinimumWindowPackets
	}
	c.maxWindow = DefaultMaxWindow
	if cfg.MaxWindow > 0 {
		c.maxWindow = float64(cfg.MaxWindow)
	}
	mds := cfg.MaxDatagramSize
	if mds <= 0 {
		mds = DefaultMaxDatagramSize
	}
	c.setSizes(mds)
	c.s = cubicState{
		cwnd:     c.initialWindow(),
		ssthresh: math.Inf(1),
		hystart:  newHyStart(c.hystartOn, c.paced),
	}
}

func (c *Cubic) setSizes(mds int) {
	c.mds = mds
	c.minWindow = float64(c.minPackets * mds)
	if c.maxWindow < c.minWindow {
		c.maxWindow = c.minWindow
	}
}

func (c *Cubic) initialWindow() float64 {
	w := InitialWindow(c.mds)
	if c.initPackets > 0 {
		w = c.initPackets * c.mds
	}
	return min(max(float64(w), c.minWindow), c.maxWindow)
}

// OnPacketSent implements [Controller]. CUBIC's window does not depend on
// sends; the send time feeds the round counter of HyStart++.
// bytesInFlight is not used.
func (c *Cubic) OnPacketSent(now time.Time, bytes int, bytesInFlight int) {
	c.rounds.OnPacketSent(now)
}

// OnAck implements [Controller]: it grows the window for ackedBytes newly
// acknowledged in-flight bytes, unless the ACK belongs to the recovery
// period or the sender was not using its window (priorInFlight well below
// it). rtt supplies smoothed_rtt for the cubic target; HyStart++ samples
// the RTT of the largest newly acknowledged packet itself, as
// now − largestAckedSentTime.
func (c *Cubic) OnAck(now time.Time, ackedBytes int, largestAckedSentTime time.Time, rtt *RTTStats, priorInFlight int) {
	roundEnded := c.rounds.OnAck(largestAckedSentTime)
	if ackedBytes <= 0 {
		return
	}
	if c.InRecovery(largestAckedSentTime) {
		// RFC 9002 §7.3.2: no increase until a packet sent after the
		// start of recovery is acknowledged.
		return
	}
	limited := c.cwndLimited(priorInFlight)
	if c.InSlowStart() {
		inc, exit := c.s.hystart.onAck(ackedBytes, now.Sub(largestAckedSentTime), roundEnded, c.mds)
		if limited {
			c.s.cwnd = min(c.s.cwnd+inc, c.maxWindow)
			c.pristine = false
		}
		if exit {
			// RFC 9406 §4.2: CSS is over; congestion avoidance from here.
			c.s.ssthresh = c.s.cwnd
		}
		return
	}
	c.s.hystart.finish()
	c.congestionAvoidance(now, float64(ackedBytes), rtt, limited)
}

// cwndLimited reports whether the sender was using its window when the
// acknowledged data was sent, judged from the bytes in flight before the
// ACK (RFC 9002 §7.8, RFC 7661). In slow start the window doubles per
// round, so using half of it counts. In congestion avoidance the sender
// must be within three packets of the window: CanSend stops short of the
// window by up to one packet, and pacing or ACK spacing can leave a
// little more unused without the sender being application limited.
func (c *Cubic) cwndLimited(priorInFlight int) bool {
	inflight := float64(priorInFlight)
	if c.InSlowStart() {
		return 2*inflight >= c.s.cwnd
	}
	return inflight+float64(3*c.mds) >= c.s.cwnd
}

// congestionAvoidance is RFC 9438 §4.2–§4.5 for one ACK of acked bytes.
func (c *Cubic) congestionAvoidance(now time.Time, acked float64, rtt *RTTStats, limited bool) {
	s := &c.s
	if !s.epochStarted {
		c.startEpoch(now)
	}
	if !limited {
		// §5.8: no growth while application limited. Freeze the curve by
		// moving the epoch forward by the time since the last ACK, so that
		// t counts only time spent using the window.
		if d := now.Sub(s.lastAck); d > 0 {
			s.epochStart = s.epochStart.Add(d)
		}
		s.lastAck = now
		return
	}
	s.lastAck = now
	c.pristine = false
	mds := float64(c.mds)

	// §4.3: the Reno-friendly estimate grows by alpha_cubic packets per
	// window acknowledged, and by 1 once it has regained the window before
	// the last reduction, like Reno.
	alpha := cubicAlpha
	if s.wEst >= s.cwndPrior {
		alpha = 1
	}
	s.wEst += alpha * acked * mds / s.cwnd

	t := now.Sub(s.epochStart).Seconds()
	if c.wCubic(t) < s.wEst {
		// Reno-friendly region: follow Reno's estimate.
		s.cwnd = max(s.cwnd, s.wEst)
	} else {
		// Concave (§4.4) or convex (§4.5) region: approach the window the
		// cubic function reaches one RTT from now.
		var srtt float64
		if rtt != nil {
			srtt = rtt.Smoothed().Seconds()
		}
		target := min(max(c.wCubic(t+srtt), s.cwnd), cubicMaxTargetGrowth*s.cwnd)
		s.cwnd += min((target-s.cwnd)*acked/s.cwnd, target-s.cwnd)
	}
	s.cwnd = min(s.cwnd, c.maxWindow)
}

// startEpoch begins a congestion avoidance stage at now (§4.2): t_epoch =
// now, cwnd_epoch = cwnd, K from W_max, and W_est = cwnd_epoch (§4.3). If
// no reduction has set W_max yet (HyStart++ left slow start without a
// loss), W_max = cwnd_prior = cwnd, so K = 0 and the window probes upward
// from where slow start stopped (§4.10).
func (c *Cubic) startEpoch(now time.Time) {
	s := &c.s
	s.epochStarted = true
	s.epochStart = now
	s.lastAck = now
	if !s.wMaxSet {
		s.wMax = s.cwnd
		s.cwndPrior = s.cwnd
		s.wMaxSet = true
	}
	// Cbrt keeps its sign: when cwnd exceeds W_max (after an undo), K < 0
	// and the curve still passes through cwnd at t = 0.
	s.k = math.Cbrt((s.wMax - s.cwnd) / (CubicC * float64(c.mds)))
	s.wEst = s.cwnd
}

// wCubic is W_cubic(t) of §4.2 in bytes: C × (t − K)³ packets above W_max.
func (c *Cubic) wCubic(t float64) float64 {
	d := t - c.s.k
	return CubicC*float64(c.mds)*d*d*d + c.s.wMax
}

// OnCongestionEvent implements [Controller]: loss or ECN-CE of a packet
// sent at sentTime. Within a recovery period (sentTime not after the start
// of the current one) it does nothing. Otherwise it starts a recovery
// period at now and reduces the window (RFC 9438 §4.6, §4.7):
//
//	W_max    = cwnd × (1 + β)/2   if cwnd < W_max (fast convergence), else cwnd
//	ssthresh = max(cwnd × β, minimum window)
//	cwnd     = ssthresh
//
// §4.6 computes ssthresh from the flight size, or from cwnd when growth is
// prevented while application limited, as here. lostBytes and
// priorInFlight are not used. A congestion event ends HyStart++.
func (c *Cubic) OnCongestionEvent(now time.Time, sentTime time.Time, lostBytes int, priorInFlight int) {
	if c.InRecovery(sentTime) {
		return
	}
	c.saved = c.s
	c.savedValid = true
	c.pristine = false
	s := &c.s
	s.recoveryStarted = true
	s.recoveryStart = now
	s.hystart.finish()
	if s.wMaxSet && s.cwnd < s.wMax {
		s.wMax = s.cwnd * (1 + CubicBeta) / 2
	} else {
		s.wMax = s.cwnd
	}
	s.wMaxSet = true
	s.cwndPrior = s.cwnd
	s.ssthresh = max(s.cwnd*CubicBeta, c.minWindow)
	s.cwnd = s.ssthresh
	s.epochStarted = false
}

// OnSpuriousCongestion implements [Controller] (RFC 9438 §4.9): it
// restores cwnd, ssthresh, W_max, K, the epoch, the Reno estimate, the
// recovery period and HyStart++ as they were before the last reduction.
// The window is not lowered if it has meanwhile grown past the saved one. A
// reduction is undone at most once; without one since the last undo or
// persistent congestion, this does nothing.
func (c *Cubic) OnSpuriousCongestion(now time.Time) {
	if !c.savedValid {
		return
	}
	cwnd := c.s.cwnd
	c.s = c.saved
	c.s.cwnd = max(c.s.cwnd, cwnd)
	c.savedValid = false
}

// OnPersistentCongestion implements [Controller]: the window collapses to
// the minimum window (RFC 9002 §7.6.2), and the next slow start climbs back
// to ssthresh, where congestion avoidance starts a new epoch. The engine
// normally reports the losses with OnCongestionEvent first; if it did not,
// ssthresh and W_max are set here as for a congestion event (RFC 9438
// §4.8). Persistent congestion cannot be undone.
//
// A new recovery period starts at now. (RFC 9002's pseudocode instead
// clears the recovery start time, Appendix B.8, which lets a late-detected
// loss of a packet sent before the collapse cut ssthresh down to the minimum
// window; those packets were sent under the old window, so like any other
// loss within a recovery period they no longer reduce it.)
func (c *Cubic) OnPersistentCongestion(now time.Time) {
	s := &c.s
	if math.IsInf(s.ssthresh, 1) {
		s.wMax = s.cwnd
		s.wMaxSet = true
		s.cwndPrior = s.cwnd
		s.ssthresh = max(s.cwnd*CubicBeta, c.minWindow)
	}
	s.cwnd = c.minWindow
	s.recoveryStarted = true
	s.recoveryStart = now
	s.epochStarted = false
	s.hystart.finish()
	c.savedValid = false
	c.pristine = false
}

// Window implements [Controller]: the congestion window in bytes.
func (c *Cubic) Window() int { return int(c.s.cwnd) }

// CanSend implements [Controller]: a full-size packet fits in the window
// (RFC 9002 §7: bytes in flight must not exceed the window; probes are
// exempt, and the engine sends them without asking).
func (c *Cubic) CanSend(bytesInFlight int) bool {
	return bytesInFlight+c.mds <= c.Window()
}

// PacingRate implements [Controller]: the window spread over smoothed_rtt,
// times [SlowStartPacingGain] in slow start (Conservative Slow Start
// included) and [CongestionAvoidancePacingGain] otherwise (RFC 9002 §7.7).
// Before the first RTT sample, smoothed_rtt is the initial RTT. A nil rtt
// means no pacing.
func (c *Cubic) PacingRate(rtt *RTTStats) float64 {
	if rtt == nil {
		return 0
	}
	gain := CongestionAvoidancePacingGain
	if c.InSlowStart() {
		gain = SlowStartPacingGain
	}
	return PacingRate(c.Window(), rtt.Smoothed(), gain)
}

// InSlowStart implements [Controller]: cwnd < ssthresh. Conservative Slow
// Start counts as slow start.
func (c *Cubic) InSlowStart() bool { return c.s.cwnd < c.s.ssthresh }

// InRecovery implements [Controller]: whether a packet sent at sentTime
// belongs to the current recovery period, that is, was sent no later than
// the congestion event that started it (RFC 9002 §7.3.2).
func (c *Cubic) InRecovery(sentTime time.Time) bool {
	return c.s.recoveryStarted && !sentTime.After(c.s.recoveryStart)
}

// InConservativeSlowStart reports whether HyStart++ has slowed slow start
// down (RFC 9406 §4.2).
func (c *Cubic) InConservativeSlowStart() bool { return c.InSlowStart() && c.s.hystart.inCSS() }

// SlowStartThreshold returns ssthresh in bytes, or math.MaxInt before the
// first reduction or HyStart++ exit.
func (c *Cubic) SlowStartThreshold() int {
	if math.IsInf(c.s.ssthresh, 1) {
		return math.MaxInt
	}
	return int(c.s.ssthresh)
}

// MaxDatagramSize returns the packet size windows are counted in.
func (c *Cubic) MaxDatagramSize() int { return c.mds }

// SetMaxDatagramSize implements [Controller]. The minimum window follows
// the new size. Before any ACK has grown the window or any loss reduced it,
// the initial window is recomputed for the new size (RFC 9002 §7.2);
// afterwards the window keeps its byte count, raised to the new minimum if
// needed. A running congestion avoidance epoch restarts at the next ACK,
// since CUBIC's curve is scaled by the packet size. Non-positive sizes are
// ignored.
func (c *Cubic) SetMaxDatagramSize(n int) {
	if n <= 0 || n == c.mds {
		return
	}
	c.setSizes(n)
	s := &c.s
	if c.pristine {
		s.cwnd = c.initialWindow()
	}
	s.cwnd = min(max(s.cwnd, c.minWindow), c.maxWindow)
	if !math.IsInf(s.ssthresh, 1) {
		s.ssthresh = max(s.ssthresh, c.minWindow)
	}
	s.epochStarted = false
}
