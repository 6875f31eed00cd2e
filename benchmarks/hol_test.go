package benchmarks

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// holLoss is the loss rate, each way, of the head-of-line benchmark's
// path.
const holLoss = 0.02

// BenchmarkHeadOfLine: through a user-space UDP proxy that drops 2 % of
// the datagrams each way (fixed seed), one stream of a session carries
// bulk data without pause while a second stream of the same session does
// 64-byte request/responses. Reports the small stream's p50/p99 round
// trip and the bulk stream's throughput meanwhile (bulk-MB/s). With
// independent streams, a loss on the bulk stream must not hold up the
// small one. TLS over TCP is left out: it cannot go through a UDP proxy
// (and one TCP connection would carry both streams in one byte order).
func BenchmarkHeadOfLine(b *testing.B) {
	for _, sys := range udpSystems {
		b.Run(sys, func(b *testing.B) {
			e := newEnv(b, sys, options{loss: holLoss})
			defer e.close()
			defer watchdog(b, e.close)()
			bulk := e.openOp(b, opSink)
			small := e.openOp(b, opEcho)
			defer small.Close()
			req := make([]byte, reqSize)
			resp := make([]byte, reqSize)
			if err := roundTrip(small, req, resp); err != nil {
				b.Fatal(err) // the small stream is open at the server
			}

			samples, bulkRate := requestsBesideBulk(b, small, bulk, 200*time.Millisecond)
			reportLatency(b, samples)
			b.ReportMetric(bulkRate, "bulk-MB/s")
		})
	}
}

// requestsBesideBulk makes bulk carry data without pause, waits settle
// for it to fill the path, and times b.N 64-byte round trips on small
// meanwhile; it returns the round trips and the bulk's MB/s during them.
func requestsBesideBulk(b *testing.B, small, bulk stream, settle time.Duration) ([]time.Duration, float64) {
	var stop atomic.Bool
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		chunk := make([]byte, bulkChunk)
		for !stop.Load() {
			n, err := bulk.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	time.Sleep(settle)
	req := make([]byte, reqSize)
	resp := make([]byte, reqSize)
	samples := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start, sent0 := time.Now(), sent.Load()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := roundTrip(small, req, resp); err != nil {
			b.Fatalf("request %d: %v", i, err)
		}
		samples = append(samples, time.Since(t0))
	}
	b.StopTimer()
	bulkRate := float64(sent.Load()-sent0) / time.Since(start).Seconds() / 1e6
	stop.Store(true)
	bulk.SetDeadline(time.Now()) // unblocks a Write waiting for window
	wg.Wait()
	bulk.Close()
	return samples, bulkRate
}
