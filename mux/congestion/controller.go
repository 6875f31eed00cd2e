package congestion

import "time"

// DefaultMaxDatagramSize is the packet size windows are counted in until
// SetMaxDatagramSize says otherwise: 1452 bytes, Haven's default packet size
// (wire.DefaultPacketSize), which fits a 1500-byte Ethernet MTU under IPv4
// and IPv6. It is repeated here because this package imports only the
// standard library.
const DefaultMaxDatagramSize = 1452

// Controller decides how many bytes may be in flight. All sizes in bytes.
//
// The methods follow the congestion-control events of RFC 9002 Appendix B,
// and say nothing about how the window is computed, so that algorithms
// other than [Cubic] fit behind it. A BBR-style controller, for instance,
// would ignore the loss-based signals it does not need (treating
// OnCongestionEvent as a bound on inflight rather than a multiplicative
// decrease), return its own pacing rate from PacingRate and its
// cwnd_gain × BDP from Window, and take round boundaries from a
// [RoundCounter] just as Cubic does. Per-packet delivery-rate samples would
// need more than this interface carries (the delivered count and time at
// each packet's send); such a controller should offer them as an extra
// interface that the engine detects with a type assertion, leaving this one
// unchanged for the controllers that do not need it.
//
// Implementations are sans-I/O: time comes only from the arguments, and
// the engine calls them from one goroutine.
type Controller interface {
	// OnPacketSent is called for every packet that counts toward bytes in flight.
	OnPacketSent(now time.Time, bytes int, bytesInFlight int)
	// OnAck is called once per ACK frame processed, after RTT update, with
	// the total newly acknowledged in-flight bytes, the send time of the
	// largest newly acked packet, and bytes in flight before removal.
	OnAck(now time.Time, ackedBytes int, largestAckedSentTime time.Time, rtt *RTTStats, priorInFlight int)
	// OnCongestionEvent is called when packets are declared lost (or ECN-CE);
	// sentTime is the send time of the latest lost packet. A controller reacts
	// at most once per recovery period (RFC 9002 §7.3.2).
	OnCongestionEvent(now time.Time, sentTime time.Time, lostBytes int, priorInFlight int)
	// OnSpuriousCongestion undoes the last reduction when every packet that
	// triggered it turns out to have been delivered (spurious loss).
	OnSpuriousCongestion(now time.Time)
	// OnPersistentCongestion collapses the window (RFC 9002 §7.6).
	OnPersistentCongestion(now time.Time)
	// Window returns the congestion window.
	Window() int
	// CanSend reports whether a packet may be sent with bytesInFlight outstanding.
	CanSend(bytesInFlight int) bool
	// PacingRate returns the pacing rate in bytes per second (0 = no pacing).
	PacingRate(rtt *RTTStats) float64
	InSlowStart() bool
	InRecovery(sentTime time.Time) bool
	// SetMaxDatagramSize updates the packet size the windows are counted in.
	SetMaxDatagramSize(n int)
}

// InitialWindow returns the initial congestion window of RFC 9002 §7.2 for
// a maximum datagram size: ten datagrams, limited to 14,720 bytes but never
// below two datagrams.
//
//	min(10 * max_datagram_size, max(14720, 2 * max_datagram_size))
//
// With Haven's default 1452-byte packets this is ten packets.
func InitialWindow(maxDatagramSize int) int {
	return min(10*maxDatagramSize, max(14720, 2*maxDatagramSize))
}

// MinimumWindow returns kMinimumWindow of RFC 9002 §7.2: two datagrams,
// the smallest window a loss can reduce to.
func MinimumWindow(maxDatagramSize int) int { return 2 * maxDatagramSize }

// Pacing gains applied to window/smoothed_rtt. RFC 9002 §7.7 paces at N ×
// cwnd/smoothed_rtt with N slightly above 1 (it suggests 1.25) so that the
// pacer does not turn into the bottleneck and ACK-clocked growth is not
// starved. In slow start the window doubles every round, so a sender paced
// at 1.25 × cwnd/RTT could not fill the next round's window; pacing at twice
// the current rate keeps slow start exponential (common practice in QUIC
// and TCP stacks).
const (
	SlowStartPacingGain           = 2.0
	CongestionAvoidancePacingGain = 1.25
)

// PacingRate returns gain × window / srtt in bytes per second, or 0 (do not
// pace) when srtt is not positive. Controllers use it to implement
// [Controller.PacingRate].
func PacingRate(window int, srtt time.Duration, gain float64) float64 {
	if srtt <= 0 || window <= 0 {
		return 0
	}
	// One division: srtt.Seconds() costs an integer division, a remainder
	// and a second floating-point division, and this runs for every packet
	// sent (the pacer's check).
	return gain * float64(window) * 1e9 / float64(srtt)
}
