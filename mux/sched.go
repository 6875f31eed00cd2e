package mux

// scheduler picks the channel the next packet serves: strict priority
// between levels (0 first), round-robin within a level, so a busy channel
// never starves another of its level and a lower level never delays a
// higher one (issue #4 item 7). Each level is a circular list of channels
// that may have something to send.
//
// Only the levels that have a channel queued are kept, in a short slice
// sorted by priority: sessions use one or a few of the 256 levels, so a
// linear walk is as fast as a bitmap, and an idle session pays for a few
// entries instead of a 2 KiB array of heads (issue #7). The slice starts
// in the session's store (levelsInline levels) and keeps whatever capacity
// it grew to, so queueing allocates nothing in steady state.
type scheduler struct {
	levels  []level // busy levels, by priority; each head is non-nil
	n       int32   // channels queued, over all levels (Session.unsentCap)
	control bool    // channel 0 has something to send
	// held is a channel whose ACCEPT is held back (Session.holdAccept):
	// it is not queued until something else wakes it or Poll releases it.
	held *channel
	// woke is set by every wake and wakeControl, and cleared by Poll and
	// Session.TakeWake: it tells an owner whether an API call gave Poll
	// something to do.
	woke bool
}

// level is one priority level's ring of queued channels.
type level struct {
	head *channel
	prio uint8
}

// init gives the scheduler its first levels' storage (empty, with room).
func (q *scheduler) init(first []level) { q.levels = first }

// find returns the index of c's level in q.levels, or where to insert it.
func (q *scheduler) find(prio uint8) (int, bool) {
	for i := range q.levels {
		if p := q.levels[i].prio; p >= prio {
			return i, p == prio
		}
	}
	return len(q.levels), false
}

// wake queues c at the tail of its level if it is not queued yet.
func (q *scheduler) wake(c *channel) {
	q.woke = true
	if q.held == c {
		q.held = nil
	}
	if c.queued {
		return
	}
	c.queued = true
	q.n++
	i, ok := q.find(c.prio)
	if !ok {
		if q.levels == nil { // a scheduler that init gave no storage
			q.levels = make([]level, 0, levelsInline)
		}
		c.next, c.prev = c, c
		q.levels = append(q.levels, level{})
		copy(q.levels[i+1:], q.levels[i:])
		q.levels[i] = level{head: c, prio: c.prio}
		return
	}
	h := q.levels[i].head
	tail := h.prev
	tail.next, c.prev = c, tail
	c.next, h.prev = h, c
}

// remove unqueues c.
func (q *scheduler) remove(c *channel) {
	if q.held == c {
		q.held = nil
	}
	if !c.queued {
		return
	}
	c.queued = false
	q.n--
	i, _ := q.find(c.prio)
	if c.next == c {
		n := len(q.levels) - 1
		copy(q.levels[i:], q.levels[i+1:])
		q.levels[n] = level{} // the spare slot must not keep a channel alive
		q.levels = q.levels[:n]
	} else {
		c.prev.next, c.next.prev = c.next, c.prev
		if q.levels[i].head == c {
			q.levels[i].head = c.next
		}
	}
	c.next, c.prev = nil, nil
}

// wakeControl notes that channel 0 has something to send.
func (q *scheduler) wakeControl() { q.control, q.woke = true, true }

// rotate moves c from the head of its level to the tail, after it was
// served, so its peers at the level go next.
func (q *scheduler) rotate(c *channel) {
	if !c.queued {
		return
	}
	if i, _ := q.find(c.prio); q.levels[i].head == c {
		q.levels[i].head = c.next
	}
}

// pick returns the first channel, by level and then round-robin order,
// that can put something in a packet now (Session.ready). Channels found
// with nothing to send are unqueued; they are woken when that changes.
func (q *scheduler) pick(s *Session) *channel {
	// Unqueuing a level's head makes the next channel its head, or drops
	// an emptied level: either way the first level's head is next.
	for len(q.levels) > 0 {
		c := q.levels[0].head
		if s.ready(c) {
			return c
		}
		q.remove(c)
	}
	return nil
}

// hasWork reports whether some channel is queued.
func (q *scheduler) hasWork() bool { return len(q.levels) > 0 }
