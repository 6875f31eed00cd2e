package mux

import (
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
// acknowledged or declared lost.
type sentPacket struct {
	time      time.Time
	size      int
	eliciting bool
	inFlight  bool
	state     uint8 // pktOutstanding, pktAcked, pktLost
	nf        uint8
	path      uint8  // the path it was sent on (paths.go)
	seq       uint32 // its number among the packets sent on that path
	frames    [maxFrames]frameRef
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
type sentRing struct {
	buf   []sentPacket
	first *[minSentRing]sentPacket // storage of the smallest ring (nil: allocate it)
	head  int
	n     int
	base  uint64 // packet number of buf[head]
	// peak is the most entries in use since epoch began.
	peak  int
	epoch time.Time
}

// minSentRing is the smallest ring kept: enough for a request, its
// acknowledgements and a keepalive without reallocation.
const minSentRing = 4

func (r *sentRing) get(pn uint64) *sentPacket {
	if pn < r.base || pn >= r.base+uint64(r.n) {
		return nil
	}
	return &r.buf[(r.head+int(pn-r.base))%len(r.buf)]
}

// add appends the entry for packet pn, which must be base+n.
func (r *sentRing) add() *sentPacket {
	if r.n == len(r.buf) {
		r.resize(max(minSentRing, 2*len(r.buf)))
	}
	p := &r.buf[(r.head+r.n)%len(r.buf)]
	*p = sentPacket{}
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
		buf[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}

// popFront drops the oldest entry.
func (r *sentRing) popFront() {
	r.head = (r.head + 1) % len(r.buf)
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
