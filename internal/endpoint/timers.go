package endpoint

import (
	"context"
	"runtime/pprof"
	"sync"
	"time"
)

// sessionTimers holds every session's next deadline (the engine's timers:
// loss detection, acknowledgements, pacing, idle and keepalive, and a
// rekey's retransmission) in one min-heap served by one runtime timer for
// the whole process. A session therefore costs no timer and no closure of
// its own, which is two allocations less per session (issue #7) and less
// memory per idle session; a due session is kicked (queued for a worker),
// exactly as its own timer did.
var sessionTimers timerHeap

// timerHeap is served by one goroutine (loop) that exists while the heap
// holds a deadline and exits when it empties. It used to be a
// time.AfterFunc, whose every firing started a goroutine that grew its
// stack (about 3 % of the CPU of a bulk transfer, which fires the timer
// thousands of times a second); the loop keeps one goroutine and one
// stack for all firings.
type timerHeap struct {
	// mu guards h, every Session's due and hidx, running and at. It is
	// taken with a session's mu held (arm) and never the other way.
	mu      sync.Mutex
	h       []*Session // min-heap by due
	running bool       // loop's goroutine exists
	at      time.Time  // when loop's timer fires; zero while it is not waiting
	// wake tells a waiting loop that the earliest deadline is now before
	// at, or that the heap emptied (buffered: a wake-up is never lost).
	wake chan struct{}
}

// set makes at the session's deadline, or removes it for the zero time.
func (th *timerHeap) set(s *Session, at time.Time) {
	th.mu.Lock()
	defer th.mu.Unlock()
	switch {
	case at.IsZero():
		if s.hidx > 0 {
			th.remove(s.hidx - 1)
		}
	case s.hidx > 0:
		s.due = at
		th.fix(s.hidx - 1)
	default:
		s.due = at
		th.h = append(th.h, s)
		s.hidx = len(th.h)
		th.up(len(th.h) - 1)
	}
	switch {
	case len(th.h) > 0 && !th.running:
		th.running = true
		if th.wake == nil {
			th.wake = make(chan struct{}, 1)
		}
		go th.loop()
	case th.running && (len(th.h) == 0 || !th.at.IsZero() && th.h[0].due.Before(th.at)):
		// A timer already set to fire at or before the earliest deadline is
		// left alone: under load the engines push their deadlines later on
		// nearly every run (an ACK moves the loss timer), and a firing that
		// finds nothing due only waits again.
		select {
		case th.wake <- struct{}{}:
		default:
		}
	}
}

// timerLinger is how long loop waits, once the heap is empty, for a
// deadline to come back before its goroutine ends.
const timerLinger = time.Second

// loop kicks every session whose deadline has come, in batches, outside
// the lock, and waits for the next deadline or a wake-up; it returns
// when the heap has stayed empty for timerLinger.
func (th *timerHeap) loop() {
	// Not the creator's labels: the goroutine serves every endpoint.
	pprof.SetGoroutineLabels(context.Background())
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var due [64]*Session
	lingered := false
	for {
		th.mu.Lock()
		th.at = time.Time{}
		now := time.Now()
		n := 0
		for len(th.h) > 0 && n < len(due) && !th.h[0].due.After(now) {
			due[n] = th.h[0]
			th.remove(0)
			n++
		}
		wait := time.Duration(-1) // go round at once: a full batch, or the heap emptied
		switch {
		case n == 0 && len(th.h) == 0 && lingered:
			th.running = false
			th.mu.Unlock()
			return
		case n == 0 && len(th.h) == 0:
			// Wait a while before going: a transfer's sessions clear
			// their deadlines for a moment (everything acknowledged) and
			// set them again, and a new goroutine and timer each time
			// were allocations per packet under load (TestBulkAllocs).
			// at is the end of the wait, so set wakes the loop for any
			// deadline before it.
			lingered = true
			th.at = now.Add(timerLinger)
			wait = timerLinger
		case n < len(due) && len(th.h) > 0:
			lingered = false
			th.at = th.h[0].due
			wait = th.at.Sub(now)
		default:
			lingered = false
		}
		th.mu.Unlock()
		for i := 0; i < n; i++ {
			due[i].kick()
			due[i] = nil
		}
		if wait < 0 {
			continue
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-th.wake:
		}
	}
}

// The heap operations (mu held). hidx is a session's index + 1, 0 when
// it is not in the heap.

func (th *timerHeap) less(i, j int) bool { return th.h[i].due.Before(th.h[j].due) }

func (th *timerHeap) swap(i, j int) {
	th.h[i], th.h[j] = th.h[j], th.h[i]
	th.h[i].hidx, th.h[j].hidx = i+1, j+1
}

func (th *timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !th.less(i, p) {
			return
		}
		th.swap(i, p)
		i = p
	}
}

// down sifts i down and reports whether it moved.
func (th *timerHeap) down(i int) bool {
	start := i
	for {
		l := 2*i + 1
		if l >= len(th.h) {
			break
		}
		c := l
		if r := l + 1; r < len(th.h) && th.less(r, l) {
			c = r
		}
		if !th.less(c, i) {
			break
		}
		th.swap(i, c)
		i = c
	}
	return i > start
}

func (th *timerHeap) fix(i int) {
	if !th.down(i) {
		th.up(i)
	}
}

func (th *timerHeap) remove(i int) {
	last := len(th.h) - 1
	s := th.h[i]
	if i != last {
		th.swap(i, last)
	}
	th.h[last] = nil
	th.h = th.h[:last]
	s.hidx = 0
	if i != last {
		th.fix(i)
	}
	if cap(th.h) > 1024 && len(th.h) < cap(th.h)/4 {
		th.h = append([]*Session(nil), th.h...) // give back a burst's memory
	}
}
