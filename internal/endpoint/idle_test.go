package endpoint

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// waitFor polls cond (bounded: it fails the test after 10 s); a safety
// net for asynchronous settling, never an assertion about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%s: still not the case after 10 s\n%s", what, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lentReadBuffers is how many receive buffers the endpoints' readers hold
// now (readPool's buffers out with a caller).
func lentReadBuffers() uint64 {
	st := readPool.Stats()
	return st.Gets - st.Puts
}

// echoOnce opens a stream on s, has one message echoed and closes it.
func echoOnce(t *testing.T, s *Session, msg []byte) {
	t.Helper()
	st, err := s.OpenStream("", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Write(msg); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	st.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: got %d of %d bytes, %v", len(got), len(msg), err)
	}
}

// TestIdleHoldsNoReceiveBuffers: once traffic stops, the endpoints'
// readers wait on their sockets holding no receive buffer (a reader holds
// its 16 × 64 KiB only while its socket has data), and reading resumes
// with the next packet.
func TestIdleHoldsNoReceiveBuffers(t *testing.T) {
	server, client := newPair(t)
	svc, _ := server.Listen("")
	go echo(svc)
	s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, s, bytes.Repeat([]byte("haven"), 100_000)) // 500 kB: GRO trains, full batches
	waitFor(t, "idle readers give their buffers back", func() bool { return lentReadBuffers() == 0 })
	echoOnce(t, s, []byte("again"))
	waitFor(t, "idle readers give their buffers back again", func() bool { return lentReadBuffers() == 0 })
	if free := readPool.Stats().Free; free > uint64(readPool.Classes()[0].MaxFree) {
		t.Fatalf("the read pool keeps %d buffers, bound %d", free, readPool.Classes()[0].MaxFree)
	}
}

// TestIdleGoroutines: an endpoint costs one goroutine, its reader, and an
// idle session none: the run and crypto workers are shared by the process
// (at most maxWorkers run workers stay parked while endpoints are open),
// so with 20 client endpoints and their sessions idle the process has 21
// more goroutines (20 + the server's reader) plus the parked workers and
// the one goroutine of the process-wide session timer, not 21 × (reader +
// workers). Closing them leaves none behind (the timer's goroutine exits
// with the last deadline).
func TestIdleGoroutines(t *testing.T) {
	const clients = 20
	waitFor(t, "no worker left from earlier tests", func() bool { return workersAlive() == 0 })
	before := runtime.NumGoroutine()
	server, err := Listen("udp4", loopback, Config{Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close(wire.CloseNormal, "")
	svc, _ := server.Listen("")
	go echo(svc) // one goroutine, and one per stream while it echoes
	var eps []*Endpoint
	defer func() {
		for _, ep := range eps {
			ep.Close(wire.CloseNormal, "")
		}
	}()
	for i := 0; i < clients; i++ {
		ep, err := Listen("udp4", loopback, Config{})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
		s, err := ep.Session(ctx(t), server.PublicKey(), server.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		echoOnce(t, s, []byte("x"))
	}
	// Counted by what each goroutine runs, not against a goroutine count
	// taken before the test: that baseline can include goroutines of
	// earlier tests still on their way out (seen under -race on a busy
	// machine), which made an exact total flaky.
	waitFor(t, "idle: one goroutine per endpoint, plus parked workers", func() bool {
		sessionq.mu.Lock()
		workers, parked := sessionq.workers, sessionq.parked
		sessionq.mu.Unlock()
		g := havenGoroutines()
		return g.readers == clients+1 && g.runWorkers == parked && workers == parked &&
			parked <= maxWorkers && g.cryptoWorkers == 0 && g.timers <= 1 && g.other == 0
	})
	for _, ep := range eps {
		ep.Close(wire.CloseNormal, "")
	}
	eps = nil
	server.Close(wire.CloseNormal, "")
	waitFor(t, "closed: no goroutine left", func() bool { return runtime.NumGoroutine() <= before && workersAlive() == 0 })
}

// workersAlive counts the process's run and crypto workers.
func workersAlive() int {
	sessionq.mu.Lock()
	n := sessionq.workers
	sessionq.mu.Unlock()
	cryptoq.mu.Lock()
	n += cryptoq.workers
	cryptoq.mu.Unlock()
	return n
}

// TestCloseWaitsForRuns: Close returns only when no run of its sessions is
// in progress and lets none start afterwards, though the workers are
// shared with other endpoints that go on working.
func TestCloseWaitsForRuns(t *testing.T) {
	var r runQueue
	if !r.enter() {
		t.Fatal("a fresh gate refuses a run")
	}
	stopped := make(chan struct{})
	go func() { r.stop(); close(stopped) }()
	waitFor(t, "stop marks the gate", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.stopped
	})
	select {
	case <-stopped:
		t.Fatal("stop returned while a run was in progress")
	default:
	}
	if r.enter() {
		t.Fatal("a run started after stop")
	}
	r.exit()
	<-stopped
}

// goroutineCount sorts the goroutines running Haven code by what they are.
type goroutineCount struct {
	readers, runWorkers, cryptoWorkers, timers int
	other                                      int // any other goroutine in Haven code
}

// havenGoroutines classifies every goroutine from its stack. The test's
// own goroutines (the test, the echo service's accept loop) are left out;
// a goroutine per session or per packet, anywhere in the module, shows up
// in other.
func havenGoroutines() goroutineCount {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var c goroutineCount
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case !strings.Contains(g, "havenproto/haven/"):
		case strings.Contains(g, "endpoint.(*Endpoint).readLoop"):
			c.readers++
		case strings.Contains(g, "endpoint.runWorker"):
			c.runWorkers++
		case strings.Contains(g, "endpoint.cryptoWorker"):
			c.cryptoWorkers++
		case strings.Contains(g, "endpoint.(*timerHeap).loop"):
			c.timers++
		case strings.Contains(g, "endpoint.TestIdleGoroutines"), strings.Contains(g, "endpoint.echo("):
		default:
			c.other++
		}
	}
	return c
}

// TestEndedSessionHoldsNoBuffers: a packet offered to an ended session's
// inbox is refused (its caller keeps the buffer), so an ended session,
// which no run will apply packets for, holds no pool buffer.
func TestEndedSessionHoldsNoBuffers(t *testing.T) {
	server, client := newPair(t)
	s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	client.Close(wire.CloseNormal, "")
	pb, ok := readPool.Get(handOverMin)
	if !ok {
		t.Fatal("no read buffer")
	}
	defer readPool.Put(pb)
	if s.enqueue(inPacket{buf: pb.Bytes()[:handOverMin], pb: pb, pool: readPool}) {
		t.Fatal("an ended session's inbox took a packet")
	}
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.inbox != nil {
		t.Fatal("an ended session keeps an inbox")
	}
}
