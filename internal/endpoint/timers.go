package endpoint

import (
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

type timerHeap struct {
	// mu guards h, every Session's due and hidx, and the timer's arming.
	// It is taken with a session's mu held (arm) and never the other way.
	mu    sync.Mutex
	h     []*Session // min-heap by due
	timer *time.Timer
	at    time.Time // when timer is set to fire; zero: stopped
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
	th.rearm()
}

// rearm makes the runtime timer fire no later than the earliest deadline
// (mu held). A timer already set to fire at or before it is left alone:
// under load the engines push their deadlines later on nearly every run
// (an ACK moves the loss timer), and resetting the runtime timer each time
// cost about 4 % of the CPU in bulk transfers; a fire that finds nothing
// due costs one call of fire, which re-arms for what is due then. For
// the same reason an emptied heap does not stop the timer.
func (th *timerHeap) rearm() {
	if len(th.h) == 0 {
		return
	}
	next := th.h[0].due
	if !th.at.IsZero() && !next.Before(th.at) {
		return
	}
	th.at = next
	d := max(time.Until(next), 0)
	if th.timer == nil {
		th.timer = time.AfterFunc(d, th.fire)
	} else {
		th.timer.Reset(d)
	}
}

// fire kicks every session whose deadline has come, outside the lock,
// in batches, and re-arms the timer for the next one.
func (th *timerHeap) fire() {
	var due [64]*Session
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
		more := n == len(due)
		if !more {
			th.rearm()
		}
		th.mu.Unlock()
		for i := 0; i < n; i++ {
			due[i].kick()
			due[i] = nil
		}
		if !more {
			return
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
