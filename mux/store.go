package mux

import (
	"github.com/havenproto/haven/mux/congestion"
	"github.com/havenproto/haven/mux/internal/buf"
	"github.com/havenproto/haven/wire"
)

// A session's memory. New makes one allocation, a sessionAlloc: the
// Session, and next to it a sessionStore with the scratch messages of the
// receive and send paths and the first entries of everything that grows on
// demand (sent packets, ACK ranges, received-packet and channel-id ranges,
// scheduler levels, events), plus the default congestion controller. The
// channel tables (idtable.Table) keep their first entries in the Session itself.
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
	sentMore    [minSentMore]frameRef
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
