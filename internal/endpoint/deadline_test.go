package endpoint

import (
	"testing"
	"time"
)

// closedWithin reports whether ch is closed within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestDeadline walks a Deadline through net.Conn's rules: none set never
// fires, a past deadline has passed at once, a pending one fires for a
// waiter, a later Set moves it (for calls already waiting), the zero time
// cancels it, and a deadline set again after one passed is pending anew.
func TestDeadline(t *testing.T) {
	var d Deadline
	if d.Passed() || isClosed(d.Wait()) {
		t.Fatal("a deadline never set has passed")
	}

	d.Set(time.Now().Add(-time.Second))
	if !d.Passed() || !isClosed(d.Wait()) {
		t.Fatal("a past deadline has not passed")
	}

	// Pending: a waiter's channel closes when it passes.
	d.Set(time.Now().Add(20 * time.Millisecond))
	if d.Passed() {
		t.Fatal("a deadline 20 ms ahead has passed at once")
	}
	ch := d.Wait()
	if isClosed(ch) {
		t.Fatal("the channel of a pending deadline is closed")
	}
	if !closedWithin(ch, 10*time.Second) || !d.Passed() {
		t.Fatal("a pending deadline did not fire")
	}

	// Moved later while a call waits: the same channel closes later.
	d.Set(time.Now().Add(time.Hour))
	ch = d.Wait()
	d.Set(time.Now().Add(30 * time.Millisecond))
	if !closedWithin(ch, 10*time.Second) {
		t.Fatal("a deadline moved earlier did not fire for the waiting call")
	}

	// Cancelled by the zero time: the waiting call keeps waiting.
	d.Set(time.Now().Add(20 * time.Millisecond))
	ch = d.Wait()
	d.Set(time.Time{})
	if closedWithin(ch, 100*time.Millisecond) || d.Passed() {
		t.Fatal("a cancelled deadline fired")
	}
	// A past deadline now wakes that same call.
	d.Set(time.Now().Add(-time.Millisecond))
	if !isClosed(ch) {
		t.Fatal("a past deadline did not wake the waiting call")
	}

	// Set without any Wait: Passed alone sees it pass.
	d.Set(time.Now().Add(5 * time.Millisecond))
	deadline := time.Now().Add(10 * time.Second)
	for !d.Passed() {
		if time.Now().After(deadline) {
			t.Fatal("Passed never reported a deadline 5 ms ahead")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDeadlineAllocs: once a Deadline has its timer and channel, setting
// it again and waiting on it allocates nothing (a server that sets a
// deadline before every read pays nothing per read).
func TestDeadlineAllocs(t *testing.T) {
	var d Deadline
	d.Set(time.Now().Add(time.Hour))
	d.Wait()
	n := testing.AllocsPerRun(100, func() {
		d.Set(time.Now().Add(time.Hour))
		d.Wait()
		d.Passed()
	})
	if n != 0 {
		t.Fatalf("Set+Wait of a pending deadline: %v allocations, want 0", n)
	}
	// A deadline nobody waits on costs nothing at all.
	var e Deadline
	n = testing.AllocsPerRun(100, func() {
		e.Set(time.Now().Add(time.Hour))
		e.Passed()
	})
	if n != 0 {
		t.Fatalf("Set+Passed without a waiter: %v allocations, want 0", n)
	}
}
