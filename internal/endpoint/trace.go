package endpoint

import (
	"bufio"
	"encoding/base64"
	"io"
	"strconv"
	"time"

	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// Session traces (issue #16, docs/TRACE.md): with Config.Trace set, each
// session writes its engine's events (mux.Config.Trace) and its key
// updates as JSON lines, one event per line, named and shaped after qlog's
// main schema where an event maps onto it (draft-ietf-quic-qlog-main-schema,
// draft-ietf-quic-qlog-quic-events): {"time": ms since the session began,
// "name": "category:event", "data": {...}}. The first line describes the
// session. Writing is buffered and happens in the session's turn; the
// writer is flushed, and closed if it is an io.Closer, when the session
// ends.

// TraceInfo describes a session whose trace begins (Config.Trace).
type TraceInfo struct {
	Peer      wire.PublicKey
	Initiator bool
	Start     time.Time
}

// tracer writes one session's trace.
type tracer struct {
	w     *bufio.Writer
	c     io.Closer // the writer, closed at the end, if it is one
	start time.Time
	b     []byte // the line being built
}

// newTracer starts a trace on w with the session's description.
func newTracer(w io.Writer, info TraceInfo) *tracer {
	t := &tracer{w: bufio.NewWriterSize(w, 64<<10), start: info.Start}
	if c, ok := w.(io.Closer); ok {
		t.c = c
	}
	vantage := "server"
	if info.Initiator {
		vantage = "client"
	}
	t.b = append(t.b[:0], `{"qlog_format":"JSON lines","title":"haven session","vantage_point":{"type":"`...)
	t.b = append(t.b, vantage...)
	t.b = append(t.b, `"},"peer":"`...)
	t.b = base64.RawURLEncoding.AppendEncode(t.b, info.Peer[:])
	t.b = append(t.b, `","reference_time":`...)
	t.b = strconv.AppendInt(t.b, info.Start.UnixMilli(), 10)
	t.b = append(t.b, "}\n"...)
	t.w.Write(t.b)
	return t
}

// lossTrigger is qlog's name for each loss reason.
var lossTrigger = [...]string{
	mux.LossPacketThreshold: "reordering_threshold",
	mux.LossTimeThreshold:   "time_threshold",
	mux.LossAbandoned:       "path_abandoned",
}

// traceNames is each engine event's name in the trace.
var traceNames = [...]string{
	mux.TracePacketSent:     "transport:packet_sent",
	mux.TracePacketReceived: "transport:packet_received",
	mux.TracePacketLost:     "recovery:packet_lost",
	mux.TraceProbeTimeout:   "recovery:probe_timeout",
	mux.TraceMetrics:        "recovery:metrics_updated",
	mux.TracePathAdded:      "haven:path_added",
	mux.TracePathRemoved:    "haven:path_removed",
	mux.TraceChannelOpened:  "haven:channel_opened",
	mux.TraceChannelClosed:  "haven:channel_closed",
}

// event writes one engine event (mux.Config.Trace).
func (t *tracer) event(ev *mux.TraceEvent) {
	if int(ev.Kind) >= len(traceNames) || traceNames[ev.Kind] == "" {
		return
	}
	b := t.name(t.head(ev.Time), traceNames[ev.Kind])
	switch ev.Kind {
	case mux.TracePacketSent, mux.TracePacketReceived, mux.TracePacketLost:
		b = append(b, `{"header":{"packet_number":`...)
		b = strconv.AppendUint(b, ev.PN, 10)
		b = append(b, `},"raw":{"length":`...)
		b = strconv.AppendInt(b, int64(ev.Size), 10)
		b = append(b, `},"path":`...)
		b = strconv.AppendInt(b, int64(ev.Path), 10)
		switch ev.Kind {
		case mux.TracePacketLost:
			b = append(b, `,"trigger":"`...)
			if int(ev.Reason) < len(lossTrigger) {
				b = append(b, lossTrigger[ev.Reason]...)
			}
			b = append(b, '"')
		default:
			b = append(b, `,"channel":`...)
			b = strconv.AppendUint(b, uint64(ev.Channel), 10)
		}
		if ev.Kind == mux.TracePacketSent {
			b = append(b, `,"ack_eliciting":`...)
			b = strconv.AppendBool(b, ev.Eliciting)
			b = append(b, `,"retransmitted_bytes":`...)
			b = strconv.AppendInt(b, int64(ev.Retransmitted), 10)
		}
	case mux.TraceProbeTimeout:
		b = append(b, `{"path":`...)
		b = strconv.AppendInt(b, int64(ev.Path), 10)
		b = append(b, `,"pto_count":`...)
		b = strconv.AppendInt(b, int64(ev.Count), 10)
	case mux.TraceMetrics:
		b = append(b, `{"path":`...)
		b = strconv.AppendInt(b, int64(ev.Path), 10)
		b = append(b, `,"congestion_window":`...)
		b = strconv.AppendInt(b, int64(ev.CongestionWindow), 10)
		b = append(b, `,"bytes_in_flight":`...)
		b = strconv.AppendInt(b, int64(ev.BytesInFlight), 10)
		b = append(b, `,"smoothed_rtt":`...)
		b = appendMillis(b, ev.SmoothedRTT)
		b = append(b, `,"latest_rtt":`...)
		b = appendMillis(b, ev.LatestRTT)
		b = append(b, `,"min_rtt":`...)
		b = appendMillis(b, ev.MinRTT)
	case mux.TracePathAdded, mux.TracePathRemoved:
		b = append(b, `{"path":`...)
		b = strconv.AppendInt(b, int64(ev.Path), 10)
	case mux.TraceChannelOpened, mux.TraceChannelClosed:
		b = append(b, `{"channel":`...)
		b = strconv.AppendUint(b, uint64(ev.Channel), 10)
		if ev.Kind == mux.TraceChannelOpened {
			owner := `,"owner":"remote"`
			if ev.Local {
				owner = `,"owner":"local"`
			}
			b = append(b, owner...)
		}
	}
	t.end(append(b, '}'))
}

// keyUpdate writes a key update: generation keys installed (1 for the
// handshake's), by this side's handshake or the peer's.
func (t *tracer) keyUpdate(now time.Time, generation uint64, ours bool) {
	b := t.name(t.head(now), "security:key_updated")
	b = append(b, `{"key_phase":`...)
	b = strconv.AppendUint(b, generation-1, 10)
	b = append(b, `,"trigger":"`...)
	if ours {
		b = append(b, "local_update"...)
	} else {
		b = append(b, "remote_update"...)
	}
	t.end(append(b, `"}`...))
}

// head starts a line with its time.
func (t *tracer) head(at time.Time) []byte {
	b := append(t.b[:0], `{"time":`...)
	return appendMillis(b, at.Sub(t.start))
}

// name adds an event's name and opens its data.
func (t *tracer) name(b []byte, name string) []byte {
	b = append(b, `,"name":"`...)
	b = append(b, name...)
	return append(b, `","data":`...)
}

// end closes the line and writes it.
func (t *tracer) end(b []byte) {
	b = append(b, "}\n"...)
	t.w.Write(b)
	t.b = b
}

// close flushes the trace and closes its writer.
func (t *tracer) close() {
	t.w.Flush()
	if t.c != nil {
		t.c.Close()
	}
}

// appendMillis appends d in milliseconds with microsecond precision.
func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', -1, 64)
}
