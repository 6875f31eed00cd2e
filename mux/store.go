package mux

import (
	"iter"

	"github.com/havenproto/haven/mux/congestion"
	"github.com/havenproto/haven/mux/internal/buf"
	"github.com/havenproto/haven/wire"
)

// A session's memory. New makes one allocation, a sessionAlloc: the
// Session, and next to it a sessionStore with the scratch messages of the
// receive and send paths and the first entries of everything that grows on
// demand (sent packets, ACK ranges, received-packet and channel-id ranges,
// scheduler levels, events), plus the default congestion controller. The
// channel tables (idTable) keep their first entries in the Session itself.
// A session whose packets arrive in order and that has a few channels at a
// time needs no other allocation for its own state (a channel costs one:
// its struct and buffers, whose rings come from pools), and an idle
// session holds that one block (TestIdleFootprint). What outgrows its
// first entries moves to a heap array and keeps that room; only the
// sent-packet ring moves back, when it shrinks to its first size. The
// store belongs to its Session alone and lives as long as it: nothing
// outside the Session may keep a pointer into it.

// Sizes of the first entries kept in a sessionStore.
const (
	ackInline    = 4 // ACK ranges built or parsed: one in order, a few after losses
	levelsInline = 2 // busy scheduler levels
	eventsInline = 4 // channels with events waiting for PollEvent
)

// sessionStore is the storage a Session starts with (see above).
type sessionStore struct {
	in  msgScratch // decoded messages of the packet being received
	out msgScratch // messages being encoded

	ackIn wire.Ack // the ACK being applied; Ranges starts in ackInRanges

	sent        [minSentRing]sentPacket
	ackOut      [ackInline]wire.AckRange
	ackInRanges [ackInline]wire.AckRange
	recvd       buf.InlineRanges // ackState.recvd
	peerSeen    buf.InlineRanges // Session.peerSeen
	levels      [levelsInline]level
	events      [eventsInline]uint32
}

// sessionAlloc is what New allocates when the owner brings its own
// congestion controller (Config.NewController).
type sessionAlloc struct {
	s     Session
	store sessionStore
}

// sessionAllocCubic is what New allocates for the default controller,
// which lives in the same block.
type sessionAllocCubic struct {
	sessionAlloc
	cubic congestion.Cubic
}

// maxAckInCap bounds the ACK ranges kept between ACKs: a Haven peer sends
// at most maxAckRanges, so only another implementation (or a hostile one)
// makes the slice grow beyond this, and it is not kept at that size.
const maxAckInCap = 4 * maxAckRanges

// idTable maps channel ids to values. Its first idInline entries live in
// the table itself and a map is made only for more at once, so a session
// with a few channels at a time, or a few finished ones whose last events
// wait, allocates nothing for them. Once made, the map is kept, as a map's
// buckets always were.
type idTable[V any] struct {
	ids  [idInline]uint32 // 0 marks a free slot (channel 0 is the session)
	vals [idInline]V
	more map[uint32]V // entries beyond the first, and id 0 if ever used
	n    int
}

const idInline = 4

// slot returns the inline slot holding id, or -1.
func (t *idTable[V]) slot(id uint32) int {
	if id != 0 {
		for i, x := range t.ids {
			if x == id {
				return i
			}
		}
	}
	return -1
}

// get returns id's value and whether id is present.
func (t *idTable[V]) get(id uint32) (V, bool) {
	if i := t.slot(id); i >= 0 {
		return t.vals[i], true
	}
	v, ok := t.more[id]
	return v, ok
}

// lookup returns id's value, or the zero V.
func (t *idTable[V]) lookup(id uint32) V {
	v, _ := t.get(id)
	return v
}

// put sets id's value.
func (t *idTable[V]) put(id uint32, v V) {
	if i := t.slot(id); i >= 0 {
		t.vals[i] = v
		return
	}
	if _, ok := t.more[id]; ok {
		t.more[id] = v
		return
	}
	t.n++
	if id != 0 {
		for i, x := range t.ids {
			if x == 0 {
				t.ids[i], t.vals[i] = id, v
				return
			}
		}
	}
	if t.more == nil {
		t.more = make(map[uint32]V)
	}
	t.more[id] = v
}

// remove deletes id.
func (t *idTable[V]) remove(id uint32) {
	if i := t.slot(id); i >= 0 {
		var zero V
		t.ids[i], t.vals[i] = 0, zero // the slot must not keep a channel alive
		t.n--
		return
	}
	if _, ok := t.more[id]; ok {
		delete(t.more, id)
		t.n--
	}
}

// len returns the number of entries.
func (t *idTable[V]) len() int { return t.n }

// all yields every value, in no particular order. The table must not
// change during the iteration.
func (t *idTable[V]) all() iter.Seq[V] {
	return func(yield func(V) bool) {
		for i, x := range t.ids {
			if x != 0 && !yield(t.vals[i]) {
				return
			}
		}
		for _, v := range t.more {
			if !yield(v) {
				return
			}
		}
	}
}
