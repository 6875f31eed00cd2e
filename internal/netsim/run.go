package netsim

import (
	"errors"
	"fmt"
	"time"
)

// Endpoint is one side of a simulated session: a sans-I/O state machine
// that Run feeds with packets and the fake time.
type Endpoint interface {
	// Receive hands the endpoint a packet that arrived at now. pkt is valid
	// only during the call (netsim reuses it afterwards); the endpoint may
	// modify it in place but must copy whatever it keeps.
	Receive(pkt []byte, now time.Time)
	// Poll asks the endpoint for the next packet to send at now; it writes
	// it into buf and returns its length, or 0 when it has nothing to send
	// now. buf has SendBufferSize bytes and is reused after Poll returns.
	Poll(buf []byte, now time.Time) int
	// Deadline returns the next time the endpoint wants Poll called even if
	// nothing arrives; the zero time means no timer. A deadline at or
	// before the current time means "now". Run calls Poll with now equal
	// to the deadline, so a timer must fire when now >= deadline (not only
	// after it) and then move the deadline on; a deadline that stays at
	// the current time while Poll sends nothing is reported as ErrStalled.
	Deadline() time.Time
}

// Errors returned by Run; they are wrapped with details, so test them with
// errors.Is.
var (
	// ErrStalled: nothing is in flight and neither endpoint has a timer, so
	// nothing can ever happen again (a deadlock, or a protocol that went
	// quiet before done). Also returned when an endpoint keeps a deadline
	// at the current time without sending or moving it (a livelock).
	ErrStalled = errors.New("netsim: stalled: nothing in flight and no timer pending")
	// ErrTimeLimit: the next event lies beyond the time limit given to Run.
	ErrTimeLimit = errors.New("netsim: simulated time limit exceeded")
	// ErrEventLimit: Run processed Network.MaxEvents events.
	ErrEventLimit = errors.New("netsim: event limit exceeded")
)

// stuckSteps is how many consecutive clock steps at one instant that
// deliver nothing and send nothing Run tolerates before it reports a
// livelock as ErrStalled.
const stuckSteps = 1000

// Run drives endpoints a (index 0) and b (index 1) over the network until
// done returns true, and then returns nil. done is checked on entry, after
// every delivery and after every step's polls; a nil done never finishes,
// so Run then ends with one of its errors (ErrStalled is the normal end of
// a protocol that goes quiet).
//
// Each step first polls both endpoints at the current time, then advances
// the clock to the earliest of the next delivery, a.Deadline() and
// b.Deadline(), delivers every packet due at that instant (Receive), and
// polls again. Polling takes packets from an endpoint (a first, then b)
// until Poll returns 0 or MaxPolls packets were taken (then the next step
// is at the same instant), and Sends each one at once. Endpoints are
// polled at every step, whatever woke the clock.
//
// Run never loops forever. limit bounds the simulated time from the call:
// when the next event lies beyond Now()+limit, the clock is set to that
// bound and Run returns ErrTimeLimit. MaxEvents bounds the clock steps,
// deliveries and sends of the call (ErrEventLimit). ErrStalled reports a
// state from which nothing can happen. Run may be called again afterwards
// to continue the same simulation.
func (n *Network) Run(a, b Endpoint, done func() bool, limit time.Duration) error {
	if done == nil {
		done = func() bool { return false }
	}
	maxEvents := n.MaxEvents
	if maxEvents <= 0 {
		maxEvents = DefaultMaxEvents
	}
	maxPolls := n.MaxPolls
	if maxPolls <= 0 {
		maxPolls = DefaultMaxPolls
	}
	if n.sendBuf == nil {
		n.sendBuf = make([]byte, SendBufferSize)
	}
	end := n.now
	if limit > 0 {
		end = satAdd(n.now, limit)
	}
	eps := [2]Endpoint{a, b}
	events, stuck := 0, 0
	if done() {
		return nil
	}
	for {
		// Poll both endpoints at the current instant.
		sent, more := 0, false
		for i, ep := range eps {
			for p := 0; ; p++ {
				if p == maxPolls {
					more = true // come back at this instant for the rest
					break
				}
				k := ep.Poll(n.sendBuf, n.Now())
				if k == 0 {
					break
				}
				if k < 0 || k > len(n.sendBuf) {
					return fmt.Errorf("netsim: endpoint %d: Poll returned length %d, want 0..%d", i, k, len(n.sendBuf))
				}
				if events++; events > maxEvents {
					return n.eventLimit(events)
				}
				n.Send(i, n.sendBuf[:k])
				sent++
			}
		}
		if done() {
			return nil
		}

		// Advance the clock to the next event.
		next, ok := n.nextEvent(&eps)
		if more {
			next, ok = n.now, true
		}
		if !ok {
			return fmt.Errorf("%w (at %v, after %d events)", ErrStalled, n.now, events)
		}
		if next > end {
			n.now = end
			return fmt.Errorf("%w (limit %v reached at %v; next event at %v)", ErrTimeLimit, limit, n.now, next)
		}
		if events++; events > maxEvents {
			return n.eventLimit(events)
		}
		if next == n.now && sent == 0 && (len(n.pending) == 0 || n.pending[0].at > n.now) {
			// Woken only by a deadline that is already due, which the polls
			// just above did not act on.
			if stuck++; stuck > stuckSteps {
				return fmt.Errorf("%w: livelock: an endpoint keeps its deadline at %v without sending", ErrStalled, n.now)
			}
		} else {
			stuck = 0
		}
		n.now = next

		// Deliver everything due now.
		for len(n.pending) > 0 && n.pending[0].at <= n.now {
			if events++; events > maxEvents {
				return n.eventLimit(events)
			}
			n.deliverNext(&eps)
			if done() {
				return nil
			}
		}
	}
}

func (n *Network) eventLimit(events int) error {
	return fmt.Errorf("%w (%d events, at %v)", ErrEventLimit, events-1, n.now)
}

// nextEvent returns the earliest of the next delivery and the endpoints'
// deadlines, with a past deadline counting as now; false means there is
// none.
func (n *Network) nextEvent(eps *[2]Endpoint) (time.Duration, bool) {
	next, ok := time.Duration(0), false
	if len(n.pending) > 0 {
		next, ok = n.pending[0].at, true
	}
	for _, ep := range eps {
		d := ep.Deadline()
		if d.IsZero() {
			continue
		}
		t := max(d.Sub(Start), n.now)
		if !ok || t < next {
			next, ok = t, true
		}
	}
	return next, ok
}
