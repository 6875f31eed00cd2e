package mux

import (
	"math"
	"time"

	"github.com/havenproto/haven/mux/congestion"
)

// frameKind names a retransmittable message recorded with a sent packet.
type frameKind uint8

const (
	fStream      frameKind = iota + 1 // stream data: ch, off, n, fin
	fOpen                             // OPEN of ch
	fAccept                           // ACCEPT of ch
	fRefuse                           // REFUSE of ch
	fReset                            // RESET of ch
	fCloseCh                          // CLOSE of ch (stop sending)
	fMaxDataCh                        // MAX_DATA of ch
	fMaxDataSess                      // session MAX_DATA
	fMaxChannels                      // MAX_CHANNELS
	fCloseSess                        // session CLOSE
	fPMTUProbe                        // a path MTU probe of n bytes (not resent)
	fChallenge                        // PATH_CHALLENGE (resent while unanswered)
	fAddress                          // ADDRESS number n of ours (addresses.go)
)

// frameRef records one retransmittable message of a sent packet: on loss
// its content is queued again, on acknowledgement it is delivered.
type frameRef struct {
	kind frameKind
	fin  bool
	ch   uint32
	n    uint32
	off  uint64
}

// maxFrames bounds the tracked messages of one packet: one channel's
// control messages and at most two stream chunks (retransmitted, new).
const maxFrames = 8

// sentPacket is what the sender remembers of a packet until it is
// acknowledged or declared lost: sentMeta, and the messages it carried
// (sentRing.frame). The first lives in the entry; a packet that carried
// more (a control message beside its data, say) keeps the rest in the
// ring's overflow, from position more on. A bulk packet carries one, so an
// entry is 80 bytes instead of the 240 that eight frames inline took:
// at 1,472-byte packets the ring is written at an eighteenth of the data
// rate instead of a sixth, and takes a third of the memory when losses
// pin its front (issue #12's 8-stream profile: the ring was 5 % of the
// CPU).
type sentPacket struct {
	sentMeta
	f0   frameRef
	more uint32 // position of frame 1 in the ring's overflow (nf > 1)
}

// sentMeta is a sent packet's own state, cleared for each new packet
// (sentRing.add): the first 48 bytes of its entry.
type sentMeta struct {
	time      time.Time
	size      int
	eliciting bool
	inFlight  bool
	state     uint8 // pktOutstanding, pktAcked, pktLost
	nf        uint8
	path      uint8 // the path it was sent on (paths.go)
	// Links over runs of settled packets (ackedBelow, settledAbove): down,
	// once the packet is acknowledged, counts packets known acknowledged
	// from it down; up, once it is acknowledged or lost, counts packets
	// known settled from it up. 0 means 1. They fit the padding before seq.
	down, up uint16
	seq      uint32 // its number among the packets sent on that path
}

const (
	pktOutstanding uint8 = iota
	pktAcked
	pktLost
)

// sentRing holds sent packets indexed by packet number: numbers are
// consecutive, so packet pn lives at (pn-base) from the ring's head. It
// starts small and grows by doubling while packets are in flight
// (amortised; bounded by the congestion window). It shrinks by halves to
// what an epoch of a few probe timeouts needed, at most a quarter of its
// size, checked as acknowledgements arrive (retireSent): a session that
// has gone quiet keeps a ring of a few entries, not the one its busiest
// moment needed, while a transfer whose flight rises and falls within an
// epoch keeps its ring instead of reallocating it back and forth. A ring
// of the smallest size lives in first, the session's store, so a quiet
// session's ring costs no allocation of its own.
//
// The ring and its overflow are always a power of two long (they start at
// minSentRing and minSentMore, and double or halve), so a position wraps
// with a mask: a division per access was 1 % of a bulk sender's CPU.
type sentRing struct {
	buf   []sentPacket
	first *[minSentRing]sentPacket // storage of the smallest ring (nil: allocate it)
	head  int
	n     int
	base  uint64 // packet number of buf[head]
	// peak is the most entries in use since epoch began.
	peak  int
	epoch time.Time
	// The overflow: frames 1 and up of the packets in the ring, in packet
	// order (a packet's frames are recorded before the next is added, so
	// they are contiguous). more[mh] is at position mpos; mn are in use.
	// Positions are uint32 and wrap: fewer than 2^32 are ever in use.
	more      []frameRef
	firstMore *[minSentMore]frameRef // storage of the smallest overflow
	mh        int
	mn        int
	mpos      uint32
}

// record notes a retransmittable message in the packet being built, the
// newest entry; it reports false when the packet tracks no more.
func (r *sentRing) record(sp *sentPacket, f frameRef) bool {
	if sp.nf == 0 {
		recordFirst(sp, f.kind, f.fin, f.ch, f.n, f.off)
		return true
	}
	return r.recordMore(sp, f)
}

// recordFirst records a packet's first message, the common case. It is
// kept out of line and takes f's fields one by one, so that they arrive in
// registers and go straight into the entry: inlined, or with f spilled
// for a call, the compiler copied f 16 bytes at a time from where
// narrower stores had just put it, which stalls store-to-load forwarding
// (most of the cost of recording a bulk sender's packets, 2 % of its CPU).
//
//go:noinline
func recordFirst(sp *sentPacket, kind frameKind, fin bool, ch, n uint32, off uint64) {
	d := &sp.f0
	d.kind, d.fin, d.ch, d.n, d.off = kind, fin, ch, n, off
	sp.nf = 1
}

// recordMore is record for a packet's second message and later ones.
func (r *sentRing) recordMore(sp *sentPacket, f frameRef) bool {
	if int(sp.nf) == maxFrames {
		return false
	}
	if sp.nf == 1 {
		sp.more = r.mpos + uint32(r.mn)
	}
	if r.mn == len(r.more) {
		r.growMore()
	}
	r.more[(r.mh+r.mn)&(len(r.more)-1)] = f
	r.mn++
	sp.nf++
	return true
}

// frame returns message i (< nf) of sp, a packet of the ring.
func (r *sentRing) frame(sp *sentPacket, i int) *frameRef {
	if i == 0 {
		return &sp.f0
	}
	k := int(sp.more+uint32(i-1)-r.mpos) + r.mh
	return &r.more[k&(len(r.more)-1)]
}

// growMore doubles the overflow, which starts in firstMore.
func (r *sentRing) growMore() {
	var buf []frameRef
	if len(r.more) == 0 && r.firstMore != nil {
		buf = r.firstMore[:]
	} else {
		buf = make([]frameRef, max(minSentMore, 2*len(r.more)))
	}
	for i := 0; i < r.mn; i++ {
		buf[i] = r.more[(r.mh+i)&(len(r.more)-1)]
	}
	r.more, r.mh = buf, 0
}

// minSentRing is the smallest ring kept: enough for a request, its
// acknowledgements and a keepalive without reallocation.
const minSentRing = 4

// minSentMore is the smallest overflow: an OPEN or ACCEPT beside data, a
// few control messages.
const minSentMore = 8

func (r *sentRing) get(pn uint64) *sentPacket {
	if pn < r.base || pn >= r.base+uint64(r.n) {
		return nil
	}
	return &r.buf[(r.head+int(pn-r.base))&(len(r.buf)-1)]
}

// add appends the entry for packet pn, which must be base+n.
func (r *sentRing) add() *sentPacket {
	if r.n == len(r.buf) {
		r.resize(max(minSentRing, 2*len(r.buf)))
	}
	p := &r.buf[(r.head+r.n)&(len(r.buf)-1)]
	p.sentMeta = sentMeta{}
	r.n++
	r.peak = max(r.peak, r.n)
	return p
}

// shrink ends an epoch that began at least epoch ago: it halves the ring
// while the epoch's peak used at most a quarter of it, and starts the next
// epoch. Pointers from get or add are invalid afterwards.
func (r *sentRing) shrink(now time.Time, epoch time.Duration) {
	if now.Sub(r.epoch) < epoch {
		return
	}
	size := len(r.buf)
	for size > minSentRing && r.peak <= size/4 {
		size /= 2
	}
	if size < len(r.buf) {
		r.resize(size)
	}
	if r.mn == 0 && len(r.more) > minSentMore {
		r.more, r.mh = nil, 0 // a quiet session keeps no overflow of its own
		if r.firstMore != nil {
			r.more = r.firstMore[:]
		}
	}
	r.epoch, r.peak = now, r.n
}

// resize moves the entries to a new array of size (>= n) entries: first
// for the smallest size, else a new one. The old array is never first when
// the new one is (the ring only moves to another size).
func (r *sentRing) resize(size int) {
	var buf []sentPacket
	if size == minSentRing && r.first != nil {
		buf = r.first[:]
	} else {
		buf = make([]sentPacket, size)
	}
	for i := 0; i < r.n; i++ {
		buf[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = buf, 0
}

// Runs of settled packets. A lost packet stays at the ring's front for
// three probe timeouts (retireSent), and the packets sent after it stay
// with it, acknowledged; every ACK's first range covers them all again,
// and loss detection looks at each. Walked one by one, that cost every
// ACK a pass over tens of thousands of packets at 1 GB/s (a lost path MTU
// probe was enough). Settled packets therefore link over the runs they
// belong to, and a walk follows the links, shortening them to the whole
// run as it goes (path compression, as in a union-find): a run already
// seen costs a step or two. Settled packets never become unsettled, so a
// link stays true while its packets are in the ring.

// ackedBelow returns how many packets from pn down are acknowledged, as
// far as the down links show, stopping once it reaches lo (it may count
// past lo). pn is an acknowledged packet of the ring.
func (r *sentRing) ackedBelow(pn, lo uint64) uint64 { return r.run(pn, pn-lo+1, false) }

// settledAbove returns how many packets from pn up, below hi, are settled
// (acknowledged or lost), as far as the up links show (it may count past
// hi). pn is a settled packet of the ring.
func (r *sentRing) settledAbove(pn, hi uint64) uint64 { return r.run(pn, hi-pn, true) }

// run counts the packets of pn's run, up (settled packets, up links) or
// down (acknowledged packets, down links), following the links until a
// packet outside the run or span packets counted, then shortens each link
// it followed to the end of what it counted.
func (r *sentRing) run(pn, span uint64, up bool) uint64 {
	link := func(k uint64) *uint16 { // the link of the packet k from pn, if in the run
		if up {
			if p := r.get(pn + k); p != nil && p.state != pktOutstanding {
				return &p.up
			}
		} else if p := r.get(pn - k); p != nil && p.state == pktAcked {
			return &p.down
		}
		return nil
	}
	total := uint64(0)
	for l := link(0); l != nil && total < span; l = link(total) {
		total += uint64(max(*l, 1))
	}
	for k := uint64(0); k < total && k < span; {
		l := link(k)
		if l == nil {
			break
		}
		d := uint64(max(*l, 1))
		*l = uint16(min(total-k, math.MaxUint16))
		k += d
	}
	return total
}

// popFront drops the oldest entry.
func (r *sentRing) popFront() {
	if nf := int(r.buf[r.head].nf); nf > 1 {
		r.mh = (r.mh + nf - 1) & (len(r.more) - 1)
		r.mn -= nf - 1
		r.mpos += uint32(nf - 1)
	}
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	r.base++
}

// recovery is the sender's loss recovery state of one path (RFC 9002;
// PROTOCOL.md §6.6.4): every path has its own RTT estimate, congestion
// controller, pacer, bytes in flight, loss detection and probe timeout.
type recovery struct {
	rtt      congestion.RTTStats
	cc       congestion.Controller
	pacer    congestion.Pacer
	inFlight int
	// Loss detection counts packets in the path's own sequence (seq), so
	// that packets overtaken by a faster path are not lost: nextSeq is the
	// next packet's, largestAcked the largest acknowledged one's.
	nextSeq       uint32
	largestAcked  uint32
	lossTime      time.Time // earliest time a packet becomes lost by time threshold
	ptoCount      int
	probes        int       // ack-eliciting packets owed to a probe timeout
	eliciting     int       // outstanding ack-eliciting packets
	lastEliciting time.Time // last ack-eliciting packet sent on the path
	// Spurious-loss undo: the packets lost in the last congestion event
	// and how many of them were acknowledged later.
	eventLost, eventLate int
	eventStart, eventEnd uint64 // packet numbers the event's losses span
	anyAcked             bool   // largestAcked is set
	// The path's standing (paths.go): live while the session holds it;
	// suspect after two probe timeouts in a row while another path is
	// usable.
	live, suspect bool
	mode          PathMode
	// Counters for PathStats.
	sentPackets, sentBytes, lostPackets uint64
}

// SetInitialRTT replaces the RTT the session assumes before its first
// sample (333 ms, RFC 9002 §6.2.2) with one measured by the handshake
// (secure.Established.RTT on the initiator's side). The first probe
// timeout then fits the path: a lost first packet is sent again after
// about three round trips, not after about 1 s and then 2, 4 and 8 s,
// which is what made a dial on a lossy path slow once its handshake was
// done; the endpoint gives a responder's session the time from its
// response to the initiator's first packet. The first acknowledgement
// replaces the estimate, as it would the default; after one, and for
// rtt <= 0, the call does nothing.
func (s *Session) SetInitialRTT(rtt time.Duration) {
	if rtt > 0 && !s.rec.rtt.HasSample() {
		s.rec.rtt.SetInitialRTT(rtt)
	}
}

func (r *recovery) init(cc congestion.Controller, mtu int) {
	r.cc = cc
	r.rtt = congestion.NewRTTStats(0)
	r.pacer = congestion.NewPacer(mtu, 10)
	r.live = true
}

// Loss thresholds of RFC 9002 §6.1.
const (
	packetThreshold = 3
	granularity     = time.Millisecond
)

// lossDelay is the time threshold: 9/8 of the larger of the latest and
// smoothed RTT, at least the timer granularity.
func (r *recovery) lossDelay() time.Duration {
	d := max(r.rtt.Latest(), r.rtt.Smoothed())
	return max(d*9/8, granularity)
}
