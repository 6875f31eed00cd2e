package mux

import "time"

// Tracing (issue #16): with Config.Trace set, the engine reports its
// events as they happen: every packet sent, received and declared lost
// (with why), probe timeouts, the recovery metrics after each
// acknowledgement, paths added and removed, channels opened and
// released. The owner turns them into a trace (the endpoint writes JSON
// lines close to qlog's main schema, docs/TRACE.md). With Trace nil, a
// nil check is all it costs.

// TraceKind says what a TraceEvent reports.
type TraceKind uint8

const (
	TracePacketSent     TraceKind = iota + 1 // PN, Size, Path, Channel, Eliciting, Retransmitted
	TracePacketReceived                      // PN, Size, Path, Channel
	TracePacketLost                          // PN, Size, Path, Reason
	TraceProbeTimeout                        // Path, Count
	TraceMetrics                             // Path and its recovery metrics, after an ACK
	TracePathAdded                           // Path
	TracePathRemoved                         // Path
	TraceChannelOpened                       // Channel, Local
	TraceChannelClosed                       // Channel
)

// LossReason says why a packet was declared lost (TracePacketLost).
type LossReason uint8

const (
	LossPacketThreshold LossReason = iota + 1 // three later packets of its path acknowledged
	LossTimeThreshold                         // a later packet acknowledged, and 9/8 RTT passed
	LossAbandoned                             // its path went dark or away (AbandonPath, a suspect path)
)

// TraceEvent is one engine event. Only the fields its Kind names are set.
// It is valid during the Trace call only: a Trace function copies what it
// keeps.
type TraceEvent struct {
	Kind          TraceKind
	Time          time.Time
	PN            uint64
	Size          int // packet bytes, tag included
	Path          int
	Channel       uint32
	Eliciting     bool
	Local         bool // the channel was opened by this side
	Retransmitted int  // stream bytes sent again in the packet
	Reason        LossReason
	Count         int // probe timeouts in a row
	// Recovery metrics (TraceMetrics).
	CongestionWindow, BytesInFlight int
	SmoothedRTT, LatestRTT, MinRTT  time.Duration
}

// trace reports ev (its Time set to now) when tracing is on.
func (s *Session) trace(ev *TraceEvent) {
	ev.Time = s.now
	s.cfg.Trace(ev)
}

// traceMetrics reports path k's recovery metrics.
func (s *Session) traceMetrics(k int) {
	r := s.path(k)
	s.trace(&TraceEvent{Kind: TraceMetrics, Path: k, CongestionWindow: r.cc.Window(), BytesInFlight: r.inFlight,
		SmoothedRTT: r.rtt.Smoothed(), LatestRTT: r.rtt.Latest(), MinRTT: r.rtt.Min()})
}
