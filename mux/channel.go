package mux

import (
	"time"

	"github.com/havenproto/haven/mux/internal/buf"
	"github.com/havenproto/haven/wire"
)

// chanState is where a channel is in its life.
type chanState uint8

const (
	chOpening  chanState = iota // we sent OPEN, no ACCEPT yet
	chIncoming                  // the peer sent OPEN, the owner has not accepted yet
	chOpen                      // accepted
	chDone                      // finished; kept until its control messages are acknowledged
)

// pending control messages of a channel, as bits.
const (
	pendOpen    uint16 = 1 << iota // OPEN (until a packet carrying it is acknowledged)
	pendAccept                     // ACCEPT
	pendRefuse                     // REFUSE
	pendReset                      // RESET
	pendClose                      // CLOSE (stop sending)
	pendMaxData                    // MAX_DATA for the channel
	pendBlocked                    // BLOCKED for the channel
)

// channel is one channel of a session. It is owned by the session's
// goroutine like everything else in a Session.
type channel struct {
	id      uint32
	typ     wire.ChannelType
	prio    uint8
	service string
	local   bool // opened by this side
	state   chanState
	pending uint16
	// unackedCtl counts sent REFUSE, RESET and CLOSE messages not yet
	// acknowledged: the channel lives until they are delivered.
	unackedCtl int
	openSeen   bool // a packet carrying our OPEN was acknowledged

	// Stream channels.
	send        *buf.SendBuffer
	recv        *buf.RecvBuffer
	sendLimit   uint64    // the peer's MAX_DATA for this channel
	recvLimit   uint64    // the limit we announced
	recvHighest uint64    // highest offset received, counted by session flow control
	blockedAt   uint64    // limit reported in the last BLOCKED
	lastTune    time.Time // last window update, for auto-tuning
	writeDone   bool      // CloseWrite or Close called: FIN queued
	capBlocked  bool      // a write was cut short by Session.unsentCap: wake the writer when it drains
	readDone    bool      // Close called: we read no more
	ownerClosed bool      // the owner called CloseChannel or Refuse: it holds no reference
	finSeen     bool      // the peer\'s FIN arrived (even if its data was discarded)
	peerStopped bool      // the peer sent CLOSE: stop sending
	resetSent   bool
	resetCode   uint32
	closeCode   uint32
	refuseText  string
	peerErr     *ChannelError // reset or close from the peer, or refusal
	peerErrV    ChannelError  // peerErr's storage (setPeerErr)

	// Datagram channels (PROTOCOL.md §5.9, §5.10). sendLimit and recvLimit
	// above count datagrams here, by sequence number: the peer's limit for
	// what we send, and the limit we grant (announced by MAX_DATA).
	dgOut         dgQueue // datagrams waiting to be sent
	dgOutSeq      uint64  // sequence number of the next datagram (low 32 bits on the wire)
	dgBlockedAt   uint64  // sendLimit reported in the last BLOCKED
	dgBlockedSent bool    // a BLOCKED went out for dgBlockedAt
	dgIn          dgRing  // whole datagrams received, waiting for the owner
	dgNext        uint64  // highest sequence number received + 1, or the peer's BLOCKED limit
	dgHeld        int     // datagrams received and not yet released by the owner
	dgAvgLen      int     // moving average of the received datagrams' sizes: sizes the window
	dgPeerBlocked bool    // the peer reported BLOCKED at our limit: announce any growth
	reasm         *buf.Reassembler
	fecOut        *fecSender   // SetDatagramFEC (fec.go)
	fecIn         *fecReceiver // in a session with FEC, once a datagram or repair arrived

	// Scheduling: a ring of channels per priority level.
	next, prev *channel
	queued     bool

	// Events pending delivery to the owner.
	events EventKind
}

// streamChannel is a stream channel with its buffers, allocated at once:
// a channel open costs one allocation in the engine instead of three
// (issue #7). The buffers' rings are still allocated on first use.
type streamChannel struct {
	channel
	sendBuf buf.SendBuffer
	recvBuf buf.RecvBuffer
}

// setPeerErr records the peer's reset, close or refusal of c, in the
// channel's own storage the first time (no allocation), so that an error
// already handed out never changes.
func (c *channel) setPeerErr(e ChannelError) {
	if c.peerErr != nil {
		p := new(ChannelError)
		*p = e
		c.peerErr = p
		return
	}
	c.peerErrV = e
	c.peerErr = &c.peerErrV
}

// isStream reports whether the channel is a reliable stream.
func (c *channel) isStream() bool { return c.typ == wire.ChannelStream }

// hasData reports whether the channel has stream data or datagrams it may
// send now, given the session's remaining flow-control credit.
func (c *channel) hasData(sessionCredit uint64) bool {
	if c.state == chIncoming || c.state == chDone && c.pending == 0 {
		return false
	}
	if !c.isStream() {
		if c.state != chOpen && c.state != chOpening {
			return false
		}
		if c.fecOut != nil && c.fecOut.pending() {
			return true // repair symbols (PROTOCOL.md §5.11)
		}
		if c.dgOut.len() == 0 {
			return false
		}
		// Within the peer's limit, or out of it with a BLOCKED to report.
		return c.dgCanSend() || c.dgBlockDue()
	}
	if c.send == nil || c.resetSent {
		return false
	}
	if c.send.HasLost() {
		return true
	}
	return !c.peerStopped && c.send.Sendable(c.newDataLimit(sessionCredit))
}

// newDataLimit is the highest stream offset new data may reach: the
// channel's limit, and the session's remaining credit.
func (c *channel) newDataLimit(sessionCredit uint64) uint64 {
	return min(c.sendLimit, c.send.SentMax()+sessionCredit)
}

// eofReady reports whether the whole stream has arrived and only the end
// of stream is left to read.
func (c *channel) eofReady() bool {
	final, ok := c.recv.FinalSize()
	return ok && c.recv.Contiguous() == final
}

// wantsToSend reports whether the channel has anything for a packet.
func (c *channel) wantsToSend(sessionCredit uint64) bool {
	return c.pending != 0 || c.hasData(sessionCredit)
}

// finished reports whether the channel has nothing left to do and can be
// forgotten: both directions ended and every control message delivered.
//
// The owner must close every channel it opened or accepted, as it closes a
// file: state stays until then, so a refusal or reset can still be read.
func (c *channel) finished() bool {
	if !c.ownerClosed || c.pending != 0 || c.unackedCtl != 0 {
		return false
	}
	if !c.isStream() {
		return c.state == chDone
	}
	sendDone := c.resetSent || c.send == nil || c.send.AllAcked()
	recvDone := c.readDone || c.recv == nil || c.recv.Done()
	peerDone := c.peerErr != nil && c.peerErr.Reset || c.finSeen
	return c.state == chDone || sendDone && recvDone && peerDone
}

// multipathGaps lets a stream channel's buffers track as many gaps as the
// ACK ranges of a session with several paths (PROTOCOL.md §6.6.3): the
// slower path's packets in flight are holes in the stream's offsets too.
func (c *channel) multipathGaps() {
	if c.send != nil {
		c.send.GrowRanges(maxAckRangesMulti)
	}
	if c.recv != nil {
		c.recv.GrowRanges(maxAckRangesMulti)
	}
}
