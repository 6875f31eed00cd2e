package endpoint

import (
	"runtime"
	"sync"
)

// Sessions are run by one process-wide pool of workers, shared by every
// endpoint (a client that opens a socket per dial costs no worker of its
// own). Workers are started on demand, at most maxRunWorkers at a time.
// A worker that finds the queue empty parks (up to maxWorkers of them), so
// that the next packet of a request/response exchange finds a worker
// waiting instead of paying for a new goroutine; parked workers exit when
// the last endpoint closes, so a process without endpoints has none and
// goroutine-leak checks see none. The pool costs at most maxWorkers parked
// goroutines per process, whatever the number of endpoints or sessions.
//
// A session is queued at most once (Session.state); the worker that takes
// it runs it under the session's lock, so one goroutine at a time owns a
// session's state, and no goroutine exists for a session that has nothing
// to do.

// maxWorkers is the CPUs the Go scheduler uses, as read when the package
// started: it bounds the crypto workers, which never block.
var maxWorkers = max(1, runtime.GOMAXPROCS(0))

// maxRunWorkers bounds the run workers. A run may block (waiting for its
// crypto chunks, or for room in a socket's send buffer), so there are more
// of them than CPUs, as there were when each endpoint had GOMAXPROCS of
// its own; as they exit when idle, the bound costs nothing at rest.
var maxRunWorkers = 4 * maxWorkers

// workQueue is the process-wide queue of sessions to run.
type workQueue struct {
	// mu guards everything below; more signals parked workers (work
	// arrived, or the last endpoint closed).
	mu        sync.Mutex
	more      sync.Cond
	q         []*Session
	head      int
	workers   int // run workers alive: running, about to pop, or parked
	parked    int // workers waiting in pop
	endpoints int // open endpoints; parked workers exit at 0
}

var sessionq workQueue

// push queues s and starts a worker when fewer than maxRunWorkers run.
func (w *workQueue) push(s *Session) {
	w.mu.Lock()
	w.q = append(w.q, s)
	spawn := false
	if w.parked > 0 {
		w.more.Signal()
	} else if w.workers < maxRunWorkers {
		w.workers++
		spawn = true
	}
	w.mu.Unlock()
	if spawn {
		go runWorker() // no arguments: the go statement allocates no closure
	}
}

// pop takes the next session, parking while there is none, or retires
// the calling worker (nil) when enough workers are parked already or no
// endpoint is open. All under mu, so a push either wakes a parked worker,
// sees a running one, or starts a new one: no session is left queued
// without a worker.
func (w *workQueue) pop() *Session {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.head == len(w.q) {
		if w.endpoints == 0 || w.parked >= maxWorkers {
			w.workers--
			return nil
		}
		if w.more.L == nil {
			w.more.L = &w.mu
		}
		w.parked++
		w.more.Wait()
		w.parked--
	}
	s := w.q[w.head]
	w.q[w.head] = nil
	w.head++
	if w.head == len(w.q) {
		w.q, w.head = w.q[:0], 0
	}
	return s
}

// runWorker runs queued sessions until the queue is empty. A session of
// an endpoint that has stopped is dropped unrun.
func runWorker() {
	for {
		s := sessionq.pop()
		if s == nil {
			return
		}
		if s.ep.runq.enter() {
			s.run()
			s.ep.runq.exit()
		}
	}
}

// runQueue is one endpoint's gate onto the process-wide workers: it lets
// Close stop the endpoint's sessions from being run and wait for the runs
// in progress, as the endpoint's own workers once did.
type runQueue struct {
	// mu guards stopped and running; idle is signalled when running drops
	// to 0 after stop.
	mu      sync.Mutex
	idle    sync.Cond
	stopped bool
	running int // runs of this endpoint's sessions in progress
}

// push queues s; the caller has set s.queued (Session.state).
func (r *runQueue) push(s *Session) {
	r.mu.Lock()
	stopped := r.stopped
	r.mu.Unlock()
	if !stopped {
		sessionq.push(s)
	}
}

// enter reports whether a run may start, and counts it.
func (r *runQueue) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	r.running++
	return true
}

func (r *runQueue) exit() {
	r.mu.Lock()
	r.running--
	if r.running == 0 && r.stopped && r.idle.L != nil {
		r.idle.Broadcast()
	}
	r.mu.Unlock()
}

// stop lets no further run of the endpoint's sessions start and waits for
// the runs in progress to end. It must not be called from a run.
func (r *runQueue) stop() {
	r.mu.Lock()
	r.stopped = true
	r.idle.L = &r.mu
	for r.running > 0 {
		r.idle.Wait()
	}
	r.mu.Unlock()
}

// retain counts an open endpoint (newEndpoint).
func (w *workQueue) retain() {
	w.mu.Lock()
	w.endpoints++
	w.mu.Unlock()
}

// release counts a closed endpoint; with none left, parked workers exit.
func (w *workQueue) release() {
	w.mu.Lock()
	w.endpoints--
	if w.endpoints == 0 && w.more.L != nil {
		w.more.Broadcast()
	}
	w.mu.Unlock()
}
