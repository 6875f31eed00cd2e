package net

import (
	"github.com/havenproto/haven/mux/congestion"
)

// Congestion selects a session's congestion controller (Config.Congestion).
type Congestion uint8

const (
	// CongestionCUBIC, the default, is CUBIC with HyStart++ (RFC 9438,
	// RFC 9406): loss-based, it grows until a queue on the path overflows,
	// which fills the bottleneck's buffer and adds its delay to every
	// round trip.
	CongestionCUBIC Congestion = iota
	// CongestionBBR is a delay-based controller in BBR's manner
	// (mux/congestion.BBR): it paces at the path's measured bottleneck
	// bandwidth and keeps about two bandwidth-delay products in flight,
	// so round trips stay near the path's own (a 50 Mbit/s, 20 ms path
	// with a one-BDP queue: 21 ms under bulk instead of CUBIC's 36) at
	// the same throughput. See docs/PERFORMANCE.md before choosing it.
	CongestionBBR
)

// tcpName names the kernel's TCP congestion control that matches c, which
// the TCP fallback's connections ask for (docs/PROTOCOL.md §8.1): the
// session's own controller never sees a loss over TCP, so the carrier's
// decides how the session shares the path, and it should be the one
// the session was configured with.
func (c Congestion) tcpName() string {
	if c == CongestionBBR {
		return "bbr"
	}
	return "cubic"
}

// newController returns the mux controller factory for c (nil: CUBIC, the
// engine's default).
func (c Congestion) newController() func(int) congestion.Controller {
	if c == CongestionBBR {
		return func(mtu int) congestion.Controller { return congestion.NewBBR(mtu) }
	}
	return nil
}
