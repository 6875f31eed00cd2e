package endpoint

import (
	"sync"
	"time"
)

// Deadline is a settable point in time with a channel that is closed when
// it passes, so blocked calls can select on it and a new deadline wakes
// them (net.Conn semantics: a deadline in the past times out at once, the
// zero time means none).
//
// It costs nothing until a call blocks on it: Set only records the time,
// Passed compares it with the clock, and the channel and the timer that
// closes it are made by the first Wait while the deadline is pending (a
// server that sets a deadline on every connection pays for the timer only
// on those whose calls actually wait). Both are reused afterwards, except
// that a channel closed by a passed deadline is replaced.
type Deadline struct {
	// mu guards everything below; fire runs on the timer's goroutine.
	mu      sync.Mutex
	when    time.Time     // the deadline; zero: none
	passed  bool          // when has passed (a past Set, or the timer fired)
	expired chan struct{} // made by Wait; closed when the deadline passes
	timer   *time.Timer   // made by the first Wait with a deadline pending
	armed   bool          // timer is set for when
}

// closedChan is the channel of every passed deadline that nobody waited
// on while it was pending.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// NewDeadline returns a Deadline with none set. The zero Deadline is ready
// to use as well.
func NewDeadline() *Deadline { return new(Deadline) }

// Set arms the deadline at t; blocked calls waiting on Wait's channel see
// the new deadline.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.armed {
		d.timer.Stop() // a firing already under way finds when changed (fire)
		d.armed = false
	}
	d.when, d.passed = t, false
	if t.IsZero() {
		return
	}
	if time.Until(t) <= 0 {
		d.expire()
		return
	}
	if d.expired != nil {
		d.arm() // calls wait on the channel: they need the timer
	}
}

// Passed reports whether the deadline has passed, without making a
// channel or a timer.
func (d *Deadline) Passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.passed && !d.when.IsZero() && time.Until(d.when) <= 0 {
		d.expire()
	}
	return d.passed
}

// Wait returns the channel closed when the deadline passes.
func (d *Deadline) Wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.passed && !d.when.IsZero() && time.Until(d.when) <= 0 {
		d.expire()
	}
	if d.passed {
		return closedChan
	}
	if d.expired == nil {
		d.expired = make(chan struct{})
	}
	if !d.when.IsZero() && !d.armed {
		d.arm()
	}
	return d.expired
}

// arm starts the timer for when (with mu held).
func (d *Deadline) arm() {
	if d.timer == nil {
		d.timer = time.AfterFunc(time.Until(d.when), d.fire)
	} else {
		d.timer.Reset(time.Until(d.when))
	}
	d.armed = true
}

// expire marks the deadline passed and closes the waiters' channel (with
// mu held). The next Wait makes a new channel only after a new Set.
func (d *Deadline) expire() {
	d.passed = true
	if d.expired != nil {
		close(d.expired)
		d.expired = nil
	}
}

// fire is the timer's function. A firing that raced with Set finds the
// deadline changed: none, already passed, or still ahead, when the timer
// (stopped or reset by Set) is armed again for the new time.
func (d *Deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed = false
	if d.passed || d.when.IsZero() {
		return
	}
	if time.Until(d.when) > 0 {
		d.arm()
		return
	}
	d.expire()
}
