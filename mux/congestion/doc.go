// Package congestion is the congestion control of Haven's session engine
// (package mux): RTT estimation, the CUBIC congestion controller with
// HyStart++ slow start, and a pacer.
//
// Sans-I/O. Nothing here reads a clock, starts a goroutine or arms a timer.
// Every call that depends on time takes the caller's `now`, and the same
// sequence of calls always yields the same windows, rates and deadlines, so
// the engine and its simulator tests are reproducible at any machine speed.
// Callers must pass a non-decreasing `now`; send times handed back (the
// largest acknowledged packet's, a lost packet's) must be the `now` values
// the engine passed when it sent those packets.
//
// Cost model. After construction, no method allocates: the per-packet and
// per-ACK paths (OnPacketSent, OnAck, OnCongestionEvent, CanSend, the pacer
// calls) are plain arithmetic on fixed fields. The tests assert this with
// testing.AllocsPerRun.
//
// The pieces, and the RFC sections they follow:
//
//   - [RTTStats] is the RTT estimator of RFC 9002 §5: latest_rtt, min_rtt,
//     smoothed_rtt and rttvar, the ack-delay adjustment, and the derived
//     probe timeout (§6.2.1), loss delay (§6.1.2) and persistent congestion
//     duration (§7.6.1).
//   - [Controller] is the interface the engine drives; it is shaped after
//     the congestion-control pseudocode of RFC 9002 Appendix B (packet sent,
//     packets acknowledged, congestion event, persistent congestion,
//     recovery period of §7.3.2) so that other algorithms can be plugged in.
//   - [Cubic] implements [Controller] with CUBIC (RFC 9438): the cubic
//     window function, the Reno-friendly region, fast convergence, the
//     multiplicative decrease with beta 0.7, spurious-loss undo and no growth
//     while application limited; its slow start is HyStart++ (RFC 9406).
//   - [RoundCounter] delimits round trips from send and ACK times only; it
//     drives HyStart++ and is meant for other round-based algorithms too.
//   - [Pacer] spreads the window over the RTT (RFC 9002 §7.7) with a token
//     budget that allows bursts of a few packets, so that GSO batches of
//     equal-size packets still leave together.
//
// How the engine drives a Controller, per RFC 9002 Appendix B:
//
//	on sending an in-flight packet:   cc.OnPacketSent(now, size, bytesInFlight)
//	on each ACK frame, in order:      rtt.Update(...) (when the largest acknowledged
//	                                  packet is newly acknowledged and ack-eliciting), then
//	                                  cc.OnAck(now, newlyAckedInFlightBytes,
//	                                           sendTimeOfLargestNewlyAcked, &rtt, inFlightBeforeRemoval)
//	on declaring packets lost / ECN-CE: cc.OnCongestionEvent(now, sendTimeOfLatestLost, lostBytes, inFlightBefore)
//	                                  and, if they establish persistent congestion,
//	                                  cc.OnPersistentCongestion(now) and rtt.OnPersistentCongestion()
//	on learning the loss was spurious: cc.OnSpuriousCongestion(now)
//	before sending:                   cc.CanSend(bytesInFlight) and
//	                                  pacer.TimeUntilSend(now, cc.PacingRate(&rtt))
//
// HyStart++ needs round-trip boundaries (RFC 9406 §4.2). The interface
// carries no packet numbers, so [Cubic] tracks rounds itself with a
// [RoundCounter] fed by the calls above: a round ends when an ACK newly
// acknowledges a packet sent at or after the first send that followed the
// previous round's end (RFC 9406's windowEnd = SND.NXT, expressed with send
// times). The engine calls nothing extra.
package congestion
