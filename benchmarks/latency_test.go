package benchmarks

import (
	"io"
	"testing"
	"time"
)

// reqSize is the size of a request and of its response in the latency
// benchmarks.
const reqSize = 64

// BenchmarkReqResp: request/response latency on one established stream
// (TLS: one connection): write 64 bytes, read the 64-byte echo. Reports
// the median and 99th percentile round trip (p50-µs, p99-µs).
func BenchmarkReqResp(b *testing.B) {
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) {
			e := newEnv(b, sys, options{})
			defer e.close()
			defer watchdog(b, e.close)()
			s := e.openOp(b, opEcho)
			defer s.Close()
			req := make([]byte, reqSize)
			resp := make([]byte, reqSize)
			for i := range req {
				req[i] = byte(i)
			}
			samples := make([]time.Duration, 0, b.N)
			b.SetBytes(2 * reqSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := roundTrip(s, req, resp); err != nil {
					b.Fatalf("request %d: %v", i, err)
				}
				samples = append(samples, time.Since(t0))
			}
			b.StopTimer()
			reportLatency(b, samples)
		})
	}
}

// roundTrip writes req and reads len(resp) bytes of echo into resp.
func roundTrip(s stream, req, resp []byte) error {
	if _, err := s.Write(req); err != nil {
		return err
	}
	_, err := io.ReadFull(s, resp)
	return err
}
