package netsim

import (
	"testing"
	"time"
)

// windowSender keeps up to window packets of size bytes in flight: each
// packet that comes back (from an echoer) releases the next.
type windowSender struct {
	window, size, total int
	sent, got           int
}

func (w *windowSender) Receive([]byte, time.Time) { w.got++ }

func (w *windowSender) Poll(buf []byte, _ time.Time) int {
	if w.sent == w.total || w.sent-w.got >= w.window {
		return 0
	}
	w.sent++
	buf[0] = byte(w.sent) // the rest of buf is left as it is: cheap
	return w.size
}

func (w *windowSender) Deadline() time.Time { return time.Time{} }

// BenchmarkRun measures the simulator's own speed on a window-limited echo
// exchange over a jittery, rate-limited path; one op is one packet echoed,
// which is four events (two sends, two deliveries).
func BenchmarkRun(b *testing.B) {
	fwd := LinkConfig{Delay: 10 * time.Millisecond, Jitter: time.Millisecond, Bandwidth: 100_000_000, Corrupt: 0.01}
	rev := LinkConfig{Delay: 10 * time.Millisecond, Jitter: time.Millisecond}
	n := New(1, fwd, rev)
	w := &windowSender{window: 64, size: 1200, total: b.N}
	b.ReportAllocs()
	b.ResetTimer()
	if err := n.Run(w, &benchEcho{}, func() bool { return w.got == w.total }, 1000*time.Hour); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	s0, s1 := n.Stats(0), n.Stats(1)
	events := s0.Sent + s0.Delivered + s1.Sent + s1.Delivered
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// benchEcho echoes each packet without allocating: it remembers only how
// many are owed and replies with a fixed-size packet.
type benchEcho struct{ owed int }

func (e *benchEcho) Receive([]byte, time.Time) { e.owed++ }

func (e *benchEcho) Poll(buf []byte, _ time.Time) int {
	if e.owed == 0 {
		return 0
	}
	e.owed--
	return 40
}

func (e *benchEcho) Deadline() time.Time { return time.Time{} }
