package benchmarks

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idleSessions is how many idle sessions the idle-memory benchmark holds
// (fewer with -short).
const idleSessions = 1000

// BenchmarkIdleMemory: one server, and 1,000 clients in the same process,
// each with its own socket (a Haven Dialer, a quic-go DialAddr, a TCP
// connection), connect, echo one byte on a stream, close the stream
// (TLS: keep the connection, which is its session) and go idle. After a
// settling pause and a GC, it reports per session, both ends together:
// B/session (HeapInuse + StackInuse growth over the baseline taken after
// the server started), goroutines/session, and srv-goroutines/session
// (goroutines labelled as the server's). ns/op is the time to set up the
// 1,000 sessions.
func BenchmarkIdleMemory(b *testing.B) {
	n := idleSessions
	if testing.Short() {
		n = 50
	}
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) {
			b.ReportAllocs()
			var r idleResult
			for i := 0; i < b.N; i++ {
				r = measureIdle(b, sys, n)
			}
			b.ReportMetric(r.bytes, "B/session")
			b.ReportMetric(r.goroutines, "goroutines/session")
			b.ReportMetric(r.srvGoroutines, "srv-goroutines/session")
		})
	}
}

type idleResult struct{ bytes, goroutines, srvGoroutines float64 }

func measureIdle(b *testing.B, sys string, n int) idleResult {
	b.StopTimer()
	srv, err := listen(sys, options{identities: n})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.close()
	disarm := watchdog(b, srv.close)
	defer disarm()
	before := runtime.NumGoroutine()
	m0, g0, s0 := idleSnapshot()

	b.StartTimer()
	clients := make([]client, 0, n)
	streams := make([]stream, 0, n)
	defer func() {
		for _, s := range streams {
			s.Close()
		}
		for _, c := range clients {
			c.close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), benchLimit)
	defer cancel()
	for i := 0; i < n; i++ {
		c, s, err := srv.connect(ctx)
		if err != nil {
			b.Fatalf("session %d: %v", i, err)
		}
		clients = append(clients, c)
		if err := echoByte(s); err != nil {
			b.Fatalf("session %d: echo: %v", i, err)
		}
		if sys == sysTLS {
			streams = append(streams, s) // the connection is the session
		} else {
			s.Close()
		}
	}
	b.StopTimer()

	time.Sleep(500 * time.Millisecond) // closed streams are released, timers settle
	m1, g1, s1 := idleSnapshot()
	writeIdleProfile(b, sys)
	r := idleResult{
		bytes:         float64(int64(m1-m0)) / float64(n),
		goroutines:    float64(g1-g0) / float64(n),
		srvGoroutines: float64(s1-s0) / float64(n),
	}

	for _, s := range streams {
		s.Close()
	}
	for _, c := range clients {
		c.close()
	}
	streams, clients = nil, nil
	srv.close()
	waitGoroutines(before, 10*time.Second)
	return r
}

// writeIdleProfile writes a heap profile of the idle sessions to
// $IDLE_HEAPPROFILE-<system> when that variable is set (the benchmark's
// -memprofile is taken after the sessions are gone). Run with
// -memprofilerate 1 for exact figures.
func writeIdleProfile(b *testing.B, sys string) {
	path := os.Getenv("IDLE_HEAPPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path + "-" + sys)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// idleSnapshot collects garbage and returns the heap and stack memory in
// use, the goroutine count, and the count of goroutines labelled end=server.
func idleSnapshot() (mem uint64, goroutines, server int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, runtime.NumGoroutine(), serverGoroutines()
}

// serverGoroutines counts the goroutines carrying the label end=server
// (set by listen), from the goroutine profile.
func serverGoroutines() int {
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	total, count := 0, 0
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if at := strings.Index(line, " @ "); at > 0 && !strings.HasPrefix(line, "#") {
			count, _ = strconv.Atoi(line[:at])
			continue
		}
		if strings.HasPrefix(line, "# labels:") && strings.Contains(line, `"end":"server"`) {
			total += count
		}
	}
	return total
}

// waitGoroutines waits (at most limit) until no more than n goroutines
// are left, so that one run's teardown does not leak into the next
// baseline.
func waitGoroutines(n int, limit time.Duration) {
	end := time.Now().Add(limit)
	for runtime.NumGoroutine() > n && time.Now().Before(end) {
		time.Sleep(20 * time.Millisecond)
	}
}
