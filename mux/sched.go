package mux

import "math/bits"

// scheduler picks the channel the next packet serves: strict priority
// between levels (0 first), round-robin within a level, so a busy channel
// never starves another of its level and a lower level never delays a
// higher one (issue #4 item 7). Each level is a circular list of channels
// that may have something to send; a bitmap finds the first busy level.
type scheduler struct {
	heads   [256]*channel
	busy    [4]uint64 // bit p set: heads[p] != nil
	control bool      // channel 0 has something to send
}

func (q *scheduler) init() {}

// wake queues c at the tail of its level if it is not queued yet.
func (q *scheduler) wake(c *channel) {
	if c.queued {
		return
	}
	c.queued = true
	h := q.heads[c.prio]
	if h == nil {
		c.next, c.prev = c, c
		q.heads[c.prio] = c
		q.busy[c.prio>>6] |= 1 << (c.prio & 63)
		return
	}
	tail := h.prev
	tail.next, c.prev = c, tail
	c.next, h.prev = h, c
}

// remove unqueues c.
func (q *scheduler) remove(c *channel) {
	if !c.queued {
		return
	}
	c.queued = false
	if c.next == c {
		q.heads[c.prio] = nil
		q.busy[c.prio>>6] &^= 1 << (c.prio & 63)
	} else {
		c.prev.next, c.next.prev = c.next, c.prev
		if q.heads[c.prio] == c {
			q.heads[c.prio] = c.next
		}
	}
	c.next, c.prev = nil, nil
}

// wakeControl notes that channel 0 has something to send.
func (q *scheduler) wakeControl() { q.control = true }

// rotate moves c from the head of its level to the tail, after it was
// served, so its peers at the level go next.
func (q *scheduler) rotate(c *channel) {
	if c.queued && q.heads[c.prio] == c {
		q.heads[c.prio] = c.next
	}
}

// pick returns the first channel, by level and then round-robin order,
// that can put something in a packet now (Session.ready). Channels found
// with nothing to send are unqueued; they are woken when that changes.
func (q *scheduler) pick(s *Session) *channel {
	for w := 0; w < len(q.busy); w++ {
		for m := q.busy[w]; m != 0; m &= m - 1 {
			p := w<<6 | bits.TrailingZeros64(m)
			for c := q.heads[p]; c != nil; c = q.heads[p] {
				if s.ready(c) {
					return c
				}
				q.remove(c)
			}
		}
	}
	return nil
}

// hasWork reports whether some channel is queued.
func (q *scheduler) hasWork() bool {
	return q.busy[0]|q.busy[1]|q.busy[2]|q.busy[3] != 0
}
