package mux

// EventKind is a bit set of what happened on a channel.
type EventKind uint8

const (
	// EventIncoming: the peer opened the channel; Accept or Refuse it.
	EventIncoming EventKind = 1 << iota
	// EventAccepted: the peer accepted a channel this side opened.
	EventAccepted
	// EventReadable: stream bytes, end of stream, an error or a datagram
	// can be read.
	EventReadable
	// EventWritable: send buffer space was freed, or writing ended.
	EventWritable
	// EventClosed: the channel is finished (refused, reset, or both sides
	// done); its resources are released.
	EventClosed
	// EventPathResponse: a PATH_RESPONSE arrived (channel 0).
	EventPathResponse
	// EventSessionClosed: the session ended (channel 0); see Err.
	EventSessionClosed
	// EventAddresses: the peer advertised or retired an address
	// (channel 0); see PeerAddresses.
	EventAddresses
)

// Event says what happened on one channel since the last PollEvent for it.
// Channel 0 carries session events.
type Event struct {
	Channel uint32
	Kind    EventKind
}

// eventQueue holds channels with undelivered events, each at most once,
// so its length is bounded by the number of channels plus one. ids starts
// in the session's store (eventsInline entries) and keeps whatever room it
// grew to.
type eventQueue struct {
	ids  []uint32
	head int
}

func (q *eventQueue) push(id uint32) { q.ids = append(q.ids, id) }

func (q *eventQueue) pop() (uint32, bool) {
	if q.head == len(q.ids) {
		q.ids, q.head = q.ids[:0], 0
		return 0, false
	}
	id := q.ids[q.head]
	q.head++
	return id, true
}

// emit records events for channel c (nil for the session).
func (s *Session) emit(c *channel, k EventKind) {
	if c == nil {
		if s.sessEvents == 0 {
			s.events.push(0)
		}
		s.sessEvents |= k
		return
	}
	if c.events == 0 {
		s.events.push(c.id)
	}
	c.events |= EventKind(k)
}

// TakeWake reports whether the calls since the last TakeWake queued
// something for Poll to send (a window update, a control message, data)
// or an event for PollEvent, and starts counting afresh. An owner that
// runs the session from elsewhere uses it to skip needless runs after a
// Read that only consumed bytes.
func (s *Session) TakeWake() bool {
	w := s.sched.woke || s.events.head < len(s.events.ids)
	s.sched.woke = false
	return w
}

// PollEvent returns the next channel with events, and which. The owner
// calls it after Receive and Poll until it reports false.
func (s *Session) PollEvent() (Event, bool) {
	for {
		id, ok := s.events.pop()
		if !ok {
			return Event{}, false
		}
		if id == 0 {
			k := s.sessEvents
			s.sessEvents = 0
			if k != 0 {
				return Event{Channel: 0, Kind: k}, true
			}
			continue
		}
		if c := s.channels.Lookup(id); c != nil && c.events != 0 {
			k := c.events
			c.events = 0
			return Event{Channel: id, Kind: k}, true
		}
		if k, ok := s.gone.Get(id); ok {
			s.gone.Remove(id)
			return Event{Channel: id, Kind: k}, true
		}
	}
}
