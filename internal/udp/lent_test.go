package udp

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// countingLender lends buffers from a fixed set and counts what is out.
type countingLender struct {
	mu      sync.Mutex
	free    [][]byte
	out     int // buffers lent and not returned
	returns int // Return calls that took a buffer back
}

func newCountingLender(n, size int) *countingLender {
	l := &countingLender{}
	for i := 0; i < n; i++ {
		l.free = append(l.free, make([]byte, size))
	}
	return l
}

func (l *countingLender) Lend(msgs []Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range msgs {
		if msgs[i].Buf == nil {
			k := len(l.free) - 1
			msgs[i].Buf, l.free = l.free[k], l.free[:k]
			l.out++
		}
	}
}

func (l *countingLender) Return(msgs []Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range msgs {
		if msgs[i].Buf != nil {
			l.free = append(l.free, msgs[i].Buf)
			msgs[i].Buf = nil
			l.out--
			l.returns++
		}
	}
}

func (l *countingLender) state() (out, returns int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out, l.returns
}

// TestReadBatchLentIdle: a reader waiting in ReadBatchLent on an empty
// socket holds no buffer; a datagram then arrives in a lent buffer, and
// the buffers stay lent until the caller gives them back. Close returns
// them all.
func TestReadBatchLentIdle(t *testing.T) {
	if !directPath {
		t.Skip("the generic path waits holding a buffer (documented)")
	}
	for _, mode := range []struct {
		name string
		o    Options
	}{{"batch", Options{}}, {"nobatch", Options{DisableBatch: true}}} {
		t.Run(mode.name, func(t *testing.T) {
			a, b := listen(t, families[0], Options{}), listen(t, families[0], mode.o)
			l := newCountingLender(8, GROBufferSize)
			msgs := make([]Message, 8)
			type result struct {
				n   int
				err error
			}
			done := make(chan result, 1)
			go func() {
				n, err := b.ReadBatchLent(msgs, l)
				done <- result{n, err}
			}()
			// Wait (bounded) until the reader has found the socket empty
			// and given its buffers back: it then waits in the poller.
			deadline := time.Now().Add(testTimeout)
			for {
				out, returns := l.state()
				if returns > 0 && out == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("reader never gave its buffers back: %d out, %d returned", out, returns)
				}
				time.Sleep(time.Millisecond)
			}
			select {
			case r := <-done:
				t.Fatalf("ReadBatchLent returned %d, %v on an empty socket", r.n, r.err)
			default:
			}
			if out, _ := l.state(); out != 0 {
				t.Fatalf("%d buffers held by a reader waiting for data, want 0", out)
			}
			want := payload(1, 700)
			if _, err := a.WriteBatch([]Message{{Buf: want, Addr: b.LocalAddr()}}); err != nil {
				t.Fatal(err)
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(testTimeout):
				t.Fatal("ReadBatchLent did not return after a datagram arrived")
			}
			if r.err != nil || r.n != 1 || !bytes.Equal(msgs[0].Buf[:msgs[0].N], want) || msgs[0].Addr != a.LocalAddr() {
				t.Fatalf("read %d, %v: %d bytes from %v", r.n, r.err, msgs[0].N, msgs[0].Addr)
			}
			if out, _ := l.state(); out == 0 {
				t.Fatal("no buffer lent after a read: the data would be gone")
			}
			l.Return(msgs)
			if out, _ := l.state(); out != 0 {
				t.Fatalf("%d buffers out after Return", out)
			}

			// Close while waiting: the error path returns everything.
			go func() {
				n, err := b.ReadBatchLent(msgs, l)
				done <- result{n, err}
			}()
			b.Close()
			select {
			case r = <-done:
			case <-time.After(testTimeout):
				t.Fatal("ReadBatchLent still blocked after Close")
			}
			if !errors.Is(r.err, net.ErrClosed) {
				t.Fatalf("ReadBatchLent after Close: %v", r.err)
			}
			if out, _ := l.state(); out != 0 {
				t.Fatalf("%d buffers out after a failed read", out)
			}
		})
	}
}

// TestReadBatchLentAllocs: a steady-state ReadBatchLent allocates nothing,
// whether it waits (borrow, give back, borrow again) or finds data at once.
func TestReadBatchLentAllocs(t *testing.T) {
	if !directPath {
		t.Skip("the generic net.PacketConn path allocates; the direct path is Linux only")
	}
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	a, b := listen(t, families[0], Options{}), listen(t, families[0], Options{})
	l := newCountingLender(16, GROBufferSize)
	msgs := make([]Message, 16)
	out := []Message{{Buf: payload(2, 1000), Addr: b.LocalAddr()}}
	if err := b.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := a.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		if n, err := b.ReadBatchLent(msgs, l); err != nil || n != 1 {
			t.Fatalf("read %d, %v", n, err)
		}
		l.Return(msgs)
	})
	if allocs != 0 {
		t.Fatalf("WriteBatch+ReadBatchLent: %v allocations per run, want 0", allocs)
	}
}

// TestScratchGrowsOnDemand: a socket that writes one datagram at a time
// keeps write scratch for one message, not for the whole batch size, and a
// 64-datagram batch still goes through whole; the read scratch is held
// only during a read.
func TestScratchGrowsOnDemand(t *testing.T) {
	if !directPath {
		t.Skip("the scratch belongs to the Linux direct path")
	}
	a, b := listen(t, families[0], Options{DisableGSO: true, DisableGRO: true}), listen(t, families[0], Options{DisableGRO: true})
	if _, err := a.WriteBatch([]Message{{Buf: payload(0, 100), Addr: b.LocalAddr()}}); err != nil {
		t.Fatal(err)
	}
	in := []Message{{Buf: make([]byte, 2048)}}
	if n, err := b.ReadBatch(in); err != nil || n != 1 {
		t.Fatalf("read %d, %v", n, err)
	}
	if got := len(a.sys.w.hdrs); got != 1 {
		t.Fatalf("write scratch for %d messages after one single write, want 1", got)
	}
	if b.sys.r.sc != nil {
		t.Fatal("read scratch held after the read returned")
	}
	var batch []Message
	for i := 0; i < 64; i++ {
		batch = append(batch, Message{Buf: payload(i, 100), Addr: b.LocalAddr()})
	}
	if n, err := a.WriteBatch(batch); err != nil || n != 64 {
		t.Fatalf("wrote %d, %v", n, err)
	}
	if got := len(a.sys.w.hdrs); got != 64 {
		t.Fatalf("write scratch for %d messages after a batch of 64, want 64", got)
	}
}
