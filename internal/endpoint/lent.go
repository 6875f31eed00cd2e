package endpoint

import (
	"github.com/havenproto/haven/alignment"
	"github.com/havenproto/haven/mux"
)

// Received packet buffers lent to the engine (mux.Session.ReceiveLent):
// in-order stream data stays in the buffer it was received and decrypted
// in until the application reads it, so each received byte is copied once
// in user space, from the packet to the reader's slice, instead of twice
// (into the stream's ring, then out of it). docs/ARCHITECTURE.md, "In".

// maxLentBytes bounds the packet buffer bytes one session's streams hold
// lent, counted whole per buffer (a GRO train's buffer is 64 KiB however
// few of its packets are still unread): as maxInboxBytes bounds what
// waits to be applied, this bounds what a slow reader pins. Beyond it the
// engine copies, as it did before buffers were lent.
const maxLentBytes = 8 << 20

// lentBuf is a pooled packet buffer the engine holds references on: each
// lent piece of stream data holds one until it is read, closed or reset,
// and the inbox holds the buffer until its run recycles the batch. The
// last Release gives the buffer back to its pool.
//
// A buffer holds packets of one session only, and every Hold, Release
// and settle runs under that session's mu (the run applies and recycles
// its inbox under it; Read, Close and Reset reach the engine under it),
// so refs is a plain counter: an atomic one, touched by the run's core and
// the reader's in turn, cost 1.7 % of the CPU of a bulk transfer. The run
// counts its Holds in the inPacket; from the first Hold refs carries
// lentBias, which no number of Releases brings to zero, and recycling the
// batch swaps the bias for the count (settle).
type lentBuf struct {
	refs   int32
	pb     alignment.Buffer // zero when the packet's buffer was allocated
	pool   *alignment.Pool
	s      *Session
	charge int // bytes counted in s.lent
}

// lentFree keeps lentBufs between uses (a bulk transfer lends one per
// packet or GRO train): up to 1,024.
var lentFree = freeList[lentBuf]{max: 1024}

// lentBias stands for the inbox's hold on a lent buffer until settle.
const lentBias = 1 << 30

// Release drops one reference; the last gives the buffer back. The
// session's mu is held (the reader's Read, or the run).
func (l *lentBuf) Release() { l.drop(-1) }

// settle ends the inbox's hold on a buffer of which holds references
// were taken.
func (l *lentBuf) settle(holds int32) { l.drop(holds - lentBias) }

// drop adds delta to the references and frees the buffer at zero.
func (l *lentBuf) drop(delta int32) {
	l.refs += delta
	if l.refs != 0 {
		return
	}
	if !l.pb.IsZero() {
		l.pool.Put(l.pb)
	}
	l.s.lent -= l.charge
	l.pb, l.pool, l.s, l.charge = alignment.Buffer{}, nil, nil, 0
	lentFree.put(l)
}

// packetLender is the mux.BufferHolder of the packet a run applies: p, a
// packet of the session's inbox (or the GRO train it is part of).
type packetLender struct {
	s *Session
	p *inPacket
}

// Hold takes a reference on p's buffer, or declines when the session's
// lent bytes would pass maxLentBytes.
func (h *packetLender) Hold() mux.BufferRef {
	p := h.p
	if p.lent == nil {
		charge := cap(p.buf)
		if !p.pb.IsZero() {
			charge = len(p.pb.Bytes())
		}
		if h.s.lent+charge > maxLentBytes {
			return nil
		}
		l := lentFree.get()
		l.pb, l.pool, l.s, l.charge = p.pb, p.pool, h.s, charge
		l.refs = lentBias // the inbox's, settled by inBatch.recycle
		h.s.lent += charge
		p.lent = l
	}
	p.holds++
	return p.lent
}
