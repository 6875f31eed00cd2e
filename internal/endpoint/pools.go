package endpoint

import (
	"sync"
	"time"

	"github.com/havenproto/haven/alignment"
	"github.com/havenproto/haven/internal/udp"
)

// Process-wide buffer pools. Every endpoint shares them, so an endpoint,
// however many there are (a client opens one per Dialer), holds no
// buffer of its own while it is idle; their bounds cap what the process
// keeps, whatever the number of endpoints.
var (
	// readPool lends the readers their receive buffers (readBufs) for the
	// time they read: a reader waiting for data holds none. A buffer is
	// GROBufferSize bytes rounded up to the pool's alignment, because a
	// GRO read coalesces up to 64 KiB. A buffer holding a GRO train (or a
	// large packet) goes on to the session's inbox and comes back after
	// the run that applies it (Endpoint.receiveTrain), so the pool keeps
	// enough for a session's full inbox of trains (maxInboxBytes) plus the
	// readers' batches, four batches per CPU (8 MiB on 2 CPUs): fewer made
	// the reader allocate, and clear, a new 64 KiB buffer every few trains
	// in a bulk transfer. Readers hold buffers only while the socket has
	// data, so an idle process keeps what its last burst left, at most this.
	readPool = mustPool(alignment.Class{Size: alignment.Up(udp.GROBufferSize, alignment.BufferAlign), MaxFree: 4 * readBatch * maxWorkers})

	// packetPool holds the copies of received transport packets between
	// the reader and the worker that applies them (Session.inbox): a
	// burst on one session leaves nothing behind in it, and the bound
	// (4,096 packets, 8 MiB) caps what bursts leave in the process.
	packetPool = mustPool(
		alignment.Class{Size: 2048, MaxFree: 4096},
		alignment.Class{Size: 72 << 10, MaxFree: 64},
	)
)

func mustPool(classes ...alignment.Class) *alignment.Pool {
	p, err := alignment.NewPool(classes...)
	if err != nil {
		panic(err)
	}
	return p
}

// readBufs is a reader's udp.Lender: it lends buffers of readPool to the
// reader's messages and takes them back. Owned by the reader goroutine:
// the buffer of msgs[i] is the one held in bufs[i], from Lend until
// Return, and nothing else touches it meanwhile.
type readBufs struct {
	bufs [readBatch]alignment.Buffer
}

// Lend gives each message without a buffer one from readPool. msgs is
// always a prefix of the reader's messages, so index i is message i.
func (r *readBufs) Lend(msgs []udp.Message) {
	for i := range msgs {
		if msgs[i].Buf == nil {
			b, _ := readPool.Get(udp.GROBufferSize)
			r.bufs[i] = b
			msgs[i].Buf = b.Bytes()
		}
	}
}

// Return gives every lent buffer back to readPool.
func (r *readBufs) Return(msgs []udp.Message) {
	for i := range msgs {
		if msgs[i].Buf != nil {
			readPool.Put(r.bufs[i])
			r.bufs[i] = alignment.Buffer{}
			msgs[i].Buf = nil
		}
	}
}

// timerPool holds stopped timers for waits bounded by a deadline (a dial
// waiting for another's, WaitAcceptedUntil), so that such a wait costs no
// timer of its own. A stopped timer's channel delivers nothing stale (Go
// 1.23 timer semantics), so a pooled timer is as good as a new one.
var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// getTimer returns a pooled timer firing after d; putTimer takes it back.
func getTimer(d time.Duration) *time.Timer {
	t := timerPool.Get().(*time.Timer)
	t.Reset(d)
	return t
}

func putTimer(t *time.Timer) {
	t.Stop()
	timerPool.Put(t)
}

// freeList is a bounded LIFO of reusable objects. Unlike a sync.Pool it
// keeps them across garbage collections: objects whose slices have grown
// to a busy session's size (runs, inbox batches) would otherwise be
// dropped by every collection and grown again, so that a steady state that
// allocates nothing would not stay so. Beyond max free objects, put lets
// them go.
type freeList[T any] struct {
	// mu guards free.
	mu   sync.Mutex
	free []*T
	max  int
}

func (f *freeList[T]) get() *T {
	f.mu.Lock()
	if n := len(f.free); n > 0 {
		x := f.free[n-1]
		f.free[n-1] = nil
		f.free = f.free[:n-1]
		f.mu.Unlock()
		return x
	}
	f.mu.Unlock()
	return new(T)
}

func (f *freeList[T]) put(x *T) {
	f.mu.Lock()
	if len(f.free) < f.max {
		f.free = append(f.free, x)
	}
	f.mu.Unlock()
}
