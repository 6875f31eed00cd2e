package endpoint

import (
	"time"

	"github.com/havenproto/haven/alignment"
	"github.com/havenproto/haven/internal/secure"
)

// A session's inbox: the packets the reader queued for it (one at a time,
// or a GRO train in its read buffer) and how a run opens and applies them
// (docs/ARCHITECTURE.md, "In", step 3).

// inBatch is a session's inbox: the packets queued between two runs. The
// first packet takes a batch from inPool, the run that applies them puts
// it back, so an idle session holds none and a session's packets grow no
// slice of their own.
type inBatch struct{ p []inPacket }

// inPool keeps the batches between runs (see freeList): up to 64, and
// none grown past maxPooledInbox packets (the default inbox bound) by a
// burst: at most 64 × 1,024 packet slots, about 5 MiB, kept for bursts.
var inPool = freeList[inBatch]{max: 64}

const maxPooledInbox = 1024

// recycle gives the packets' pool buffers back and the emptied batch to
// inPool; the batch and its packets are no longer the caller's.
func (b *inBatch) recycle() {
	for i := range b.p {
		if l := b.p[i].lent; l != nil {
			l.settle(b.p[i].holds) // the buffer goes back once its lent data is read
		} else if !b.p[i].pb.IsZero() {
			b.p[i].pool.Put(b.p[i].pb)
		}
		b.p[i] = inPacket{}
	}
	b.p = b.p[:0]
	if cap(b.p) <= maxPooledInbox {
		inPool.put(b)
	}
}

// inPacket is a transport packet waiting for its session, or a GRO train
// of them (seg > 0: datagrams of seg bytes back to back, the last possibly
// shorter; Endpoint.receiveTrain).
type inPacket struct {
	buf   []byte
	seg   int
	from  path
	pb    alignment.Buffer // buf's pooled buffer (zero when buf was allocated)
	pool  *alignment.Pool  // pb's pool
	lent  *lentBuf         // set once the engine holds part of buf (lent.go)
	holds int32            // references the engine took on lent
}

// packets returns how many packets p holds.
func (p *inPacket) packets() int {
	if p.seg == 0 {
		return 1
	}
	return (len(p.buf) + p.seg - 1) / p.seg
}

// next returns the first packet of p.buf[off:] and the offset after it.
func (p *inPacket) next(off int) ([]byte, int) {
	if p.seg == 0 {
		return p.buf, len(p.buf)
	}
	end := min(off+p.seg, len(p.buf))
	return p.buf[off:end], end
}

// deliver queues a copy of a transport packet from the reader, or drops
// it when the inbox is full. The copy lives in a buffer of the packet
// pool until the running worker has opened and applied it (takeInbox puts
// it back).
func (s *Session) deliver(pkt []byte, from path) {
	var b []byte
	pb, ok := s.ep.pool.Get(len(pkt))
	if ok {
		b = pb.Bytes()[:len(pkt)]
	} else {
		b = make([]byte, len(pkt))
	}
	copy(b, pkt)
	if !s.enqueue(inPacket{buf: b, from: from, pb: pb, pool: s.ep.pool}) {
		s.ep.pool.Put(pb) // the zero Buffer is ignored
	}
}

// maxInboxBytes bounds the bytes queued for one session, beside
// Config.InboxPackets: with path MTU discovery a packet can be 64 KiB, and
// 1,024 of them would be 64 MiB held for one session.
const maxInboxBytes = 8 << 20

// enqueue adds p to the inbox and kicks the session; it reports false,
// taking nothing, when the inbox is full (the sender's loss recovery and
// congestion control then slow it). p.pb, if any, is the inbox's until
// takeInbox returns it to p.pool.
func (s *Session) enqueue(p inPacket) bool {
	s.inMu.Lock()
	if s.inShut {
		s.inMu.Unlock()
		return false // ended: no run would ever give the buffer back
	}
	if s.inbox == nil {
		s.inbox = inPool.get()
	}
	n := p.packets()
	if s.inPkts+n > s.ep.cfg.InboxPackets || s.inBytes+len(p.buf) > maxInboxBytes {
		s.inMu.Unlock()
		return false
	}
	s.inbox.p = append(s.inbox.p, p)
	s.inBytes += len(p.buf)
	s.inPkts += n
	s.inMu.Unlock()
	s.kick()
	return true
}

// takeInbox opens and applies the queued packets.
func (s *Session) takeInbox(now time.Time) {
	s.inMu.Lock()
	batch := s.inbox
	s.inbox = nil
	s.inBytes, s.inPkts = 0, 0
	s.inMu.Unlock()
	if batch == nil {
		return
	}
	in := batch.p
	// Open in three steps so that a long batch is decrypted on several
	// cores (issue #12): check and prepare every packet, decrypt them all
	// (decryptJobs), then finish and apply each in order.
	r := s.cur
	opens := r.opens[:0]
	for i := range in {
		p := &in[i]
		for off := 0; off < len(p.buf); {
			var pkt []byte
			pkt, off = p.next(off)
			opens = append(opens, secure.OpenJob{})
			if s.tr.PrepareOpen(pkt, now, &opens[len(opens)-1]) != nil {
				opens[len(opens)-1] = secure.OpenJob{} // Decrypt of the zero job fails: dropped
			}
		}
	}
	r.opens = opens
	decryptJobs(opens, &s.cwg)
	k := 0
	lender := &r.lender
	lender.s = s
	for i := range in {
		p := &in[i]
		lender.p = p
		for off := 0; off < len(p.buf); k++ {
			var pkt []byte
			pkt, off = p.next(off)
			s.applyOpened(&opens[k], len(pkt), &p.from, now, lender)
		}
	}
	*lender = packetLender{}
	batch.recycle()
}

// applyOpened finishes opening one received packet of n bytes that came
// by path *via and applies it to the engine: path validation, the first
// RTT sample of a responder, the messages. The path comes by pointer: a
// 40-byte argument on the stack, stored in words by the caller and loaded
// in halves here, cost more than the rest of this function in bulk
// transfers (a store-forwarding stall).
func (s *Session) applyOpened(job *secure.OpenJob, n int, via *path, now time.Time, lender *packetLender) {
	plain, pn, err := s.tr.FinishOpen(job, now)
	if err != nil {
		return
	}
	id := s.pathID(via)
	newest := pn >= s.highPN
	if newest {
		s.highPN = pn
	}
	if id > 0 {
		s.mp.recv[id] = now
	}
	s.backups.received(now)
	if !s.answeredAt.IsZero() {
		// The initiator's first packet answers our response: a round
		// trip, or a few when its first packets were lost.
		s.m.SetInitialRTT(now.Sub(s.answeredAt))
		s.answeredAt = time.Time{}
		s.heard.Store(true)
		s.ep.promote(s)
	}
	s.m.ReceiveLent(plain, id, now, lender)
	from := *via
	if s.m.Challenged() {
		s.respondOn = from // the PATH_RESPONSE goes back this way (route)
		if id < 0 && from != s.candidate && s.mayAdd(from) {
			// The peer opens a path beside ours (PROTOCOL.md §6.6.1).
			s.startAdding(from, now)
		}
	}
	if id < 0 && newest && from != s.candidate && s.mayFollow(from) && !(s.mp != nil && s.mp.adding) {
		if s.holdsPaths() && s.mayAdd(from) {
			// A peer with several paths moved on one of them (a NAT
			// rebinding): which one is unknown, so the new path is added
			// and the one that went silent retires by itself.
			s.startAdding(from, now)
		} else {
			s.startValidation(from) // the peer moved (§6.4)
		}
	}
	if s.candidate.valid() && from == s.candidate {
		s.amp.Received(n)
	}
	if s.m.DatagramBacklog() {
		// Move received datagrams to their channels' rings before the
		// engine's queues overflow: a batch can hold a thousand packets.
		s.dispatch()
	}
	if s.candidate.valid() && from == s.candidate && s.m.PathResponse() == s.challenge {
		if s.mp != nil && s.mp.adding {
			s.added(now)
		} else {
			s.moveTo(s.candidate) // validated
		}
	}
}
