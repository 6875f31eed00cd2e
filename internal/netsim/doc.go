// Package netsim is a deterministic, in-memory simulator of one network
// path between two endpoints, for testing Haven's session engine (package
// mux) without sockets, wall-clock time, sleeping or goroutines.
//
// Why. Reliability, flow and congestion control are only believable when
// they are shown to move bytes exactly under loss, reordering, duplication,
// corruption, delay, blackouts, bandwidth and MTU limits, and such a test is
// only useful when a failure can be replayed. Everything here runs on a fake
// clock and one seeded PCG generator per direction, so a given seed, link
// configuration and pair of deterministic endpoints always produce the same
// packet trace, at any machine speed.
//
// Model. A [Network] has two endpoints, index 0 ("A") and 1 ("B"), and one
// [LinkConfig] per direction: direction 0 carries A→B, direction 1 carries
// B→A. [Network.Send] pushes a packet through the link model at the current
// fake time, in this order:
//
//  1. MTU: a packet longer than MTU is dropped (no fragmentation).
//  2. Blackouts: a packet entering the link during a [Window] is dropped.
//  3. Bottleneck: with a Bandwidth, the packet joins a drop-tail FIFO of at
//     most QueueBytes bytes and leaves it after its serialization delay
//     (size*8/Bandwidth) behind the packets ahead of it.
//  4. Loss: the Gilbert–Elliott burst model, then independent random loss.
//     A lost packet has still used the bottleneck (it is lost on the wire).
//  5. Duplication: the packet may be delivered twice; the copy does not use
//     the bottleneck again.
//  6. Per copy: corruption (1 to 3 flipped bits in the copy), then
//     propagation Delay, uniform Jitter and the occasional Reorder delay.
//
// Delivery events wait in a min-heap ordered by delivery time, ties broken by
// the order they were scheduled, so the simulation never depends on map
// order, goroutine scheduling or the wall clock. [Network.Run] drives two
// sans-I/O [Endpoint]s from those events and the endpoints' own timers.
//
// Buffer ownership. Send copies its argument before it returns; the caller
// keeps its buffer and netsim never writes to it. A packet handed to
// [Endpoint.Receive] or to the [Network.Tap] hook belongs to netsim and is
// valid only during that call: it is recycled afterwards, so a receiver that
// keeps bytes must copy them. Receive may modify the packet in place (for
// example to decrypt it). Poll writes into a buffer netsim owns and reuses.
//
// A Network is not safe for concurrent use; it is meant for one test
// goroutine. Invalid configurations (probabilities outside [0, 1], negative
// durations or sizes, an endpoint index other than 0 or 1) are programming
// errors and panic.
package netsim
