package mux

import "github.com/havenproto/haven/wire"

// dgQueue is a bounded FIFO of whole datagrams, stored back to back in one
// byte ring so that queueing and sending them allocates nothing once the
// ring exists. It serves both directions: datagrams waiting to be sent
// (with fragment progress in sent) and received datagrams waiting for the
// owner. The ring is allocated on first use and dropped by free.
type dgQueue struct {
	limit int      // byte capacity
	data  []byte   // ring of datagram bytes
	start int      // ring offset of the first byte
	used  int      // bytes stored
	lens  []uint32 // ring of datagram lengths
	lh    int      // index of the first length
	ln    int      // number of datagrams
	sent  int      // bytes of the head datagram already sent as fragments
}

func (q *dgQueue) len() int { return q.ln }

// push copies p in; it reports false, storing nothing, when p does not fit.
func (q *dgQueue) push(p []byte) bool {
	if q.used+len(p) > q.limit {
		return false
	}
	if q.data == nil {
		q.data = make([]byte, q.limit)
		q.lens = make([]uint32, 16)
	}
	if q.ln == len(q.lens) {
		grown := make([]uint32, 2*len(q.lens))
		for i := 0; i < q.ln; i++ {
			grown[i] = q.lens[(q.lh+i)%len(q.lens)]
		}
		q.lens, q.lh = grown, 0
	}
	end := (q.start + q.used) % len(q.data)
	n := copy(q.data[end:], p)
	copy(q.data, p[n:])
	q.used += len(p)
	q.lens[(q.lh+q.ln)%len(q.lens)] = uint32(len(p))
	q.ln++
	return true
}

// headLen returns the length of the first datagram.
func (q *dgQueue) headLen() int { return int(q.lens[q.lh]) }

// copyHead copies bytes [off, off+len(dst)) of the first datagram to dst.
func (q *dgQueue) copyHead(dst []byte, off int) {
	at := (q.start + off) % len(q.data)
	n := copy(dst, q.data[at:])
	copy(dst[n:], q.data)
}

// pop drops the first datagram.
func (q *dgQueue) pop() {
	n := q.headLen()
	q.start = (q.start + n) % len(q.data)
	q.used -= n
	q.lh = (q.lh + 1) % len(q.lens)
	q.ln--
	q.sent = 0
	if q.ln == 0 {
		q.start = 0
	}
}

// free releases the memory; the queue stays usable.
func (q *dgQueue) free() { *q = dgQueue{limit: q.limit} }

// dgRing is the receive-side use of the same structure.
type dgRing = dgQueue

// Datagram flow control (docs/PROTOCOL.md §5.10). Datagrams are never
// retransmitted, but a sender must not overrun the receiving application:
// the receiver grants a limit on sequence numbers, and raises it as the
// owner releases what it received. Sequence numbers of datagrams lost on
// the way are skipped by later arrivals (dgNext) or by the sender's
// BLOCKED, so loss never leaks credit.

// dgCanSend reports whether the head datagram may go: it is within the
// peer's limit, or its first fragments already went.
func (c *channel) dgCanSend() bool { return c.dgOut.sent > 0 || c.dgOutSeq < c.sendLimit }

// dgBlockDue reports whether a BLOCKED must go: datagrams wait beyond the
// peer's limit and that limit has not been reported yet.
func (c *channel) dgBlockDue() bool {
	return c.dgOut.len() > 0 && !c.dgCanSend() && !(c.dgBlockedSent && c.dgBlockedAt == c.sendLimit)
}

// dgMinSize is the datagram size dgWindow assumes at least: one that
// fills a packet on a 1,500-byte path.
const dgMinSize = 1500

// dgWindow is how many datagrams the receiver lets the peer have in
// flight (sent, not yet received): DatagramFlightQueues times the engine's
// receive queue (Config.DatagramQueue), at most the owner's buffer
// (Config.DatagramWindow), over the average size of the datagrams
// received so far (at least dgMinSize). It keeps a sender from overrunning
// the receiving host while its application keeps up, and is large enough
// (1 MiB by default, with a 16 MiB buffer) that a receiving worker
// descheduled for a few milliseconds does not stall the sender. An owner
// that reads with RecvDatagram (DatagramWindow = DatagramQueue) gets the
// queue itself. The average, not the largest, keeps a flow of mixed sizes
// from being held to a few datagrams by one large one; what a burst of
// large ones overflows is dropped and counted (Stats.DatagramsDropped), as
// a full UDP receive buffer drops.
func (s *Session) dgWindow(c *channel) int {
	return s.dgDatagrams(c, min(DatagramFlightQueues*s.cfg.DatagramQueue, s.cfg.DatagramWindow))
}

// DatagramFlightQueues is how many of its receive queues (Config.DatagramQueue)
// a receiver lets a datagram sender have in flight; see dgWindow. Measured with BenchmarkDatagram (1,200-byte
// datagrams, both at MTU 1,500 and on loopback): 1 queue (256 KiB) and 4
// both lose nothing, 4 is 5-10 % faster; the whole 16 MiB buffer as
// in-flight credit lost 4-8 % in the receiving host's queues.
const DatagramFlightQueues = 4

// dgBufWindow is how many datagrams the owner may hold unread: its receive
// buffer (Config.DatagramWindow) over the same average size.
func (s *Session) dgBufWindow(c *channel) int { return s.dgDatagrams(c, s.cfg.DatagramWindow) }

func (s *Session) dgDatagrams(c *channel, bytes int) int {
	// Before any datagram arrived, assume the largest: the credit granted
	// at open must not let a peer overrun the buffer with large ones.
	avg := c.dgAvgLen
	if avg == 0 {
		avg = wire.MaxDatagramSize
	}
	w := bytes / max(avg, dgMinSize)
	return min(max(w, 1), 1<<20)
}

// dgRegrant recomputes the limit granted to the peer: the next sequence
// number expected plus the in-flight window, or less when the owner holds
// so much unread that a full window would overflow its buffer. So while
// the application reads, the peer runs at most a window ahead of the
// receiving host; while it does not, the peer may still fill the owner's
// buffer (a UDP socket's receive buffer), and only then waits for credit.
// The limit only grows; a MAX_DATA is queued when it grew by a quarter
// window, or at all when the peer reported being blocked. It reports
// whether one was queued.
func (s *Session) dgRegrant(c *channel) bool {
	if c.state == chDone {
		return false
	}
	w := s.dgWindow(c)
	lim := c.dgNext + uint64(max(min(w, s.dgBufWindow(c)-c.dgHeld), 0))
	if lim <= c.recvLimit {
		return false
	}
	if lim-c.recvLimit < uint64(max(w/4, 1)) && !c.dgPeerBlocked {
		return false
	}
	c.recvLimit = lim
	c.dgPeerBlocked = false
	c.pending |= pendMaxData
	s.sched.wake(c)
	return true
}

// onDatagramBlocked applies the peer's BLOCKED on a datagram channel: it
// has sent every sequence number below limit, so those not received are
// lost (or late) and no longer hold credit.
func (s *Session) onDatagramBlocked(c *channel, limit uint64) error {
	if limit > c.recvLimit {
		return violation("datagram BLOCKED beyond the granted limit")
	}
	c.dgNext = max(c.dgNext, limit)
	if limit == c.recvLimit {
		c.dgPeerBlocked = true
	}
	s.dgRegrant(c)
	return nil
}

// appendDatagramBlocked adds a BLOCKED reporting the peer's datagram limit
// when one is due, or when the packet already carries the channel's
// MAX_DATA: a datagram channel's flow-control messages share the MAX_DATA
// frame record, so losing either queues both again (ackproc.framesLost
// sets pendMaxData) and a lost BLOCKED cannot leave the sender stuck.
func (s *Session) appendDatagramBlocked(c *channel, p []byte, room int, sp *sentPacket) []byte {
	if c.dgOut.len() == 0 || c.dgCanSend() || !s.fits(p, room, 16) {
		return p
	}
	withMaxData := false
	for i := 0; i < int(sp.nf); i++ {
		if f := s.sent.frame(sp, i); f.kind == fMaxDataCh && f.ch == c.id {
			withMaxData = true
		}
	}
	if !withMaxData && (!c.dgBlockDue() || !s.sent.record(sp, frameRef{kind: fMaxDataCh, ch: c.id})) {
		return p
	}
	m := &s.store.out
	m.blocked.Limit = c.sendLimit
	p = m.blocked.Append(wire.AppendAlign(p, s.align))
	c.dgBlockedAt, c.dgBlockedSent = c.sendLimit, true
	return p
}
