package benchmarks

import (
	"slices"
	"testing"
	"time"
)

// benchLimit bounds one run of a benchmark function: past it, the
// watchdog tears the setup down, so whatever is blocked fails instead of
// hanging the run.
const benchLimit = 3 * time.Minute

// watchdog calls teardown if the benchmark is still running after
// benchLimit; the returned func disarms it.
func watchdog(b *testing.B, teardown func()) (disarm func()) {
	t := time.AfterFunc(benchLimit, func() {
		b.Logf("watchdog: still running after %v, tearing down", benchLimit)
		teardown()
	})
	return func() { t.Stop() }
}

// reportLatency reports the median and 99th percentile of samples, in
// microseconds, as the metrics p50-µs and p99-µs.
func reportLatency(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	at := func(q float64) time.Duration {
		i := int(q * float64(len(samples)))
		if i >= len(samples) {
			i = len(samples) - 1
		}
		return samples[i]
	}
	b.ReportMetric(float64(at(0.50))/1e3, "p50-µs")
	b.ReportMetric(float64(at(0.99))/1e3, "p99-µs")
}
