package benchmarks

import (
	"fmt"
	"sync"
	"testing"
)

// bulkChunk is the size of one Write in the bulk benchmarks: one op.
const bulkChunk = 64 << 10

// BenchmarkBulk: one stream on an established session (QUIC: connection;
// TLS: TCP connection) writes b.N chunks of 64 KiB to a server that reads
// and discards them; the clock stops when the server has confirmed the
// byte count after the client's half-close.
func BenchmarkBulk(b *testing.B) {
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) { benchBulk(b, sys, 1, options{}) })
	}
}

// BenchmarkBulkBasePackets: BenchmarkBulk with Haven's path MTU discovery
// off, so that Haven sends 1,452-byte packets, the size quic-go uses. It
// shows what the packet size buys on loopback (65,488-byte packets
// otherwise); quic-go runs exactly as in BenchmarkBulk.
func BenchmarkBulkBasePackets(b *testing.B) {
	for _, sys := range udpSystems {
		b.Run(sys, func(b *testing.B) { benchBulk(b, sys, 1, options{basePackets: true}) })
	}
}

// BenchmarkBulkTCPFallback: BenchmarkBulk with Haven's client on its
// stream (TCP) fallback ("haven4+tcp", docs/PROTOCOL.md §8) against TLS
// 1.3 over TCP: the same sessions, carried by the kernel's TCP as TLS is.
func BenchmarkBulkTCPFallback(b *testing.B) {
	for _, sys := range []string{sysHaven, sysTLS} {
		b.Run(sys, func(b *testing.B) { benchBulk(b, sys, 1, options{tcp: true}) })
	}
}

// BenchmarkBulkBBR: BenchmarkBulk for Haven with the BBR-style controller
// (Config.Congestion = CongestionBBR) beside Haven's default, CUBIC: the
// same transfer on a path without a bottleneck but the machine, where a
// controller that paces at a measured bandwidth must not cost throughput.
func BenchmarkBulkBBR(b *testing.B) {
	for _, sys := range []string{sysHaven, "HavenBBR"} {
		b.Run(sys, func(b *testing.B) { benchBulk(b, sysHaven, 1, options{bbr: sys == "HavenBBR"}) })
	}
}

// BenchmarkBulkParallel8: the same over 8 streams of one session (TLS: 8
// TCP connections) in parallel, b.N chunks in all.
func BenchmarkBulkParallel8(b *testing.B) {
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) { benchBulk(b, sys, 8, options{}) })
	}
}

func benchBulk(b *testing.B, sys string, streams int, o options) {
	e := newEnv(b, sys, o)
	defer e.close()
	chunk := make([]byte, bulkChunk)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	ss := make([]stream, streams)
	for i := range ss {
		ss[i] = e.openOp(b, opSink)
	}
	b.SetBytes(bulkChunk)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i, s := range ss {
		n := b.N / streams
		if i < b.N%streams {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- sendBulk(s, chunk, n)
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, s := range ss {
		s.Close()
	}
}

// sendBulk writes n chunks on s, half-closes, and checks the server's
// count.
func sendBulk(s stream, chunk []byte, n int) error {
	for i := 0; i < n; i++ {
		if _, err := s.Write(chunk); err != nil {
			return err
		}
	}
	got, err := sinkResult(s)
	if err != nil {
		return err
	}
	if want := uint64(n * len(chunk)); got != want {
		return fmt.Errorf("server counted %d bytes, want %d", got, want)
	}
	return nil
}
