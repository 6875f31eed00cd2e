package endpoint

import "sync"

// runQueue runs sessions on a fixed pool of workers. A session is queued
// at most once (Session.queued); the worker that takes it runs it under
// the session's lock, so one goroutine at a time owns a session's state,
// and no goroutine exists for a session that has nothing to do.
type runQueue struct {
	// mu guards q and stopped; cond wakes workers when q grows.
	mu      sync.Mutex
	cond    *sync.Cond
	q       []*Session
	head    int
	stopped bool
	wg      sync.WaitGroup // the workers
}

func (r *runQueue) start(workers int) {
	r.cond = sync.NewCond(&r.mu)
	for i := 0; i < workers; i++ {
		r.wg.Add(1)
		go r.work()
	}
}

// push queues s; the caller has set s.queued.
func (r *runQueue) push(s *Session) {
	r.mu.Lock()
	if !r.stopped {
		r.q = append(r.q, s)
		r.cond.Signal()
	}
	r.mu.Unlock()
}

func (r *runQueue) work() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		for r.head == len(r.q) && !r.stopped {
			r.cond.Wait()
		}
		if r.stopped {
			r.mu.Unlock()
			return
		}
		s := r.q[r.head]
		r.q[r.head] = nil
		r.head++
		if r.head == len(r.q) {
			r.q, r.head = r.q[:0], 0
		}
		r.mu.Unlock()
		s.run()
	}
}

// stop stops the workers and waits for their current runs to end.
func (r *runQueue) stop() {
	r.mu.Lock()
	r.stopped = true
	r.cond.Broadcast()
	r.mu.Unlock()
	r.wg.Wait()
}
