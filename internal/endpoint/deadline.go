package endpoint

import (
	"sync"
	"time"
)

// Deadline is a settable point in time with a channel that is closed when
// it passes, so blocked calls can select on it and a new deadline wakes
// them (net.Conn semantics: a deadline in the past times out at once, the
// zero time means none).
type Deadline struct {
	// mu guards timer and expired; expired is made by the first Set or
	// Wait (most streams never have a deadline), and replaced when a new
	// deadline re-arms after one has passed.
	mu      sync.Mutex
	timer   *time.Timer
	expired chan struct{}
}

// NewDeadline returns a Deadline with none set. The zero Deadline is ready
// to use as well.
func NewDeadline() *Deadline { return new(Deadline) }

// Set arms the deadline at t.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.expired == nil {
		d.expired = make(chan struct{})
	}
	if d.timer != nil && !d.timer.Stop() {
		<-d.expired // the timer fired (or is firing): wait for the close
	}
	d.timer = nil
	select {
	case <-d.expired:
		d.expired = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur <= 0 {
		close(d.expired)
		return
	}
	ch := d.expired
	d.timer = time.AfterFunc(time.Until(t), func() { close(ch) })
}

// Wait returns the channel closed when the deadline passes.
func (d *Deadline) Wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.expired == nil {
		d.expired = make(chan struct{})
	}
	return d.expired
}
