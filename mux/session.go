package mux

import (
	"time"

	"github.com/havenproto/haven/internal/idtable"
	"github.com/havenproto/haven/mux/congestion"
	"github.com/havenproto/haven/mux/internal/buf"
	"github.com/havenproto/haven/wire"
)

// Role says which side of the handshake a session played. It fixes the
// parity of the channel ids each side opens (docs/PROTOCOL.md §5.7) and the
// spin bit's behaviour.
type Role uint8

const (
	Initiator Role = iota // sent the first HANDSHAKE_INIT; opens odd channel ids
	Responder             // opens even channel ids
)

// sessState is the session's life cycle.
type sessState uint8

const (
	sessOpen     sessState = iota
	sessClosing            // we close: CLOSE queued or sent
	sessDraining           // the peer closed: send nothing
	sessClosed
)

// Session is one session's engine state. See the package doc.
type Session struct {
	cfg   Config
	role  Role
	local wire.PeerID // our id: source of our packets
	peer  wire.PeerID // the peer's id: destination of our packets
	align int
	mtu   int // largest packet we send now, tag included (pmtu.go)

	// Path MTU discovery (pmtu.go): packets start at baseMTU and may grow
	// to maxMTU, the largest both sides accept.
	baseMTU, maxMTU int
	pmtu            pmtuState

	peerParams wire.SessionParams

	// Packet numbers and acknowledgements.
	nextPN uint64
	acks   ackState
	sent   sentRing
	rec    recovery     // path 0's (paths.go)
	extra  []*extraPath // paths 1 and up, nil until AddPath
	// maxAcked is the largest packet number acknowledged, on any path.
	maxAcked uint64

	// Channels.
	channels        idtable.Table[*channel]
	gone            idtable.Table[EventKind] // events of channels already released
	openedByUs      uint32                   // channels we opened (n of the last)
	peerCredit      uint32                   // MAX_CHANNELS from the peer (cumulative)
	peerSeen        buf.RangeSet             // sequence numbers of channels the peer opened
	peerLive        int                      // peer-opened channels not yet finished
	peerReleased    uint32                   // peer-opened channels finished
	creditSent      uint32                   // cumulative channels we allow the peer
	creditAnnounced uint32                   // the last MAX_CHANNELS sent
	sched           scheduler
	ctrlMaxChans    bool      // MAX_CHANNELS pending
	ctrlMaxData     bool      // session MAX_DATA pending
	ctrlBlocked     bool      // session BLOCKED pending
	ctrlResponse    bool      // PATH_RESPONSE with pathResponse pending
	ctrlChallenge   bool      // PATH_CHALLENGE with pathChallenge pending
	challenged      bool      // a PATH_CHALLENGE arrived (Challenged)
	addrs           addresses // ADDRESS advertisements, ours and the peer's
	pathResponse    [8]byte
	pathChallenge   [8]byte
	pathResult      [8]byte

	// Session flow control (stream bytes, PROTOCOL.md §5.4).
	sendLimit   uint64 // the peer's MAX_DATA
	sendTotal   uint64 // new stream bytes we sent
	recvLimit   uint64 // our announced MAX_DATA
	recvTotal   uint64 // highest offsets received, summed over channels
	readTotal   uint64 // bytes the owner consumed (or discarded)
	recvWindow  uint64
	blockedSent uint64

	// Timers and liveness.
	now          time.Time // the latest time Receive or Poll was given
	lastSent     time.Time
	lastPing     time.Time // last keepalive PING
	lastElicit   time.Time // last ack-eliciting packet sent (pingWithAck)
	rxData       bool      // the packet being applied carried more than ACK, PING, PADDING
	pingNow      bool      // Ping called: send an ack-eliciting packet
	lastSessTune time.Time
	lastRecv     time.Time
	idle         time.Duration

	// Events and closing.
	events     eventQueue
	sessEvents EventKind
	state      sessState
	spin       bool
	fec        bool       // FEC scheme 1 is in force (PROTOCOL.md §5.11)
	rxPath     uint8      // the path of the latest packet received (ReceivePath)
	closeErr   error      // nil, or &closeErrV once the session ended
	closeErrV  CloseError // closeErr's storage: it is set once (terminate)
	closeCode  uint32
	closeMsg   string
	closeSent  bool
	closeUntil time.Time
	draining   bool // Drain called: finish the channels, then close

	store *sessionStore // scratch messages and first entries (store.go)

	stats Stats
	// dgWaiting is the bytes of received datagrams in the channels'
	// queues, waiting for the owner (DatagramBacklog).
	dgWaiting int
	// fecs is the session's FEC state (fec.go), made by the first
	// SetDatagramFEC or repair; fec says FEC scheme 1 is in force.
	fecs *fecSession
}

// msgScratch holds one value of each message type, reused for every
// packet so that decoding and encoding allocate nothing.
type msgScratch struct {
	close     wire.Close
	maxData   wire.MaxData
	blocked   wire.Blocked
	maxChans  wire.MaxChannels
	challenge wire.PathChallenge
	response  wire.PathResponse
	open      wire.Open
	accept    wire.Accept
	refuse    wire.Refuse
	reset     wire.Reset
	stream    wire.Stream
	dgram     wire.Datagram
}

// Stats counts what a session did.
type Stats struct {
	PacketsSent, PacketsReceived uint64
	BytesSent, BytesReceived     uint64 // packet bytes, tag included
	PacketsLost                  uint64 // declared lost
	SpuriousLosses               uint64
	StreamBytesSent              uint64 // new stream bytes (not retransmissions)
	StreamBytesRetransmitted     uint64
	DatagramsSent                uint64
	DatagramsReceived            uint64
	DatagramsDropped             uint64        // received datagrams dropped: the receive queue was full
	DatagramsUnsent              uint64        // datagrams the sender dropped: the peer's credit was exhausted (its reader is behind)
	ChannelsOpened               uint64        // both directions
	SmoothedRTT, MinRTT          time.Duration // path 0's
	CongestionWindow             int           // summed over the live paths
	BytesInFlight                int           // summed over the live paths
	PacketSize                   int           // the packet size in use, tag included (path MTU discovery)
	PMTUProbes                   uint64        // path MTU probes sent
	PMTUBlackHoles               uint64        // falls back to the base size (pmtu.go)
}

// New makes the engine for a session whose handshake has completed. local
// and peer are the two peer ids as they appear in the header; peerParams
// are the peer's announced session parameters; align is the alignment in
// force (the responder's decision).
func New(cfg Config, role Role, local, peer wire.PeerID, peerParams wire.SessionParams, align int, now time.Time) (*Session, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if align < 1 || align > 16 || align&(align-1) != 0 {
		return nil, ErrConfig
	}
	// One allocation: the Session, its store and the default controller.
	var s *Session
	var store *sessionStore
	var cubic *congestion.Cubic
	if cfg.NewController == nil {
		m := new(sessionAllocCubic)
		s, store, cubic = &m.s, &m.store, &m.cubic
	} else {
		m := new(sessionAlloc)
		s, store = &m.s, &m.store
	}
	*s = Session{
		cfg:             cfg,
		role:            role,
		local:           local,
		peer:            peer,
		align:           align,
		maxMTU:          max(min(cfg.MaxPacketSize, int(peerParams.MaxPacketSize)), wire.MinPacketSize),
		peerParams:      peerParams,
		peerCredit:      peerParams.MaxChannels,
		creditSent:      uint32(cfg.MaxChannels),
		creditAnnounced: uint32(cfg.MaxChannels),
		sendLimit:       peerParams.SessionWindow,
		recvLimit:       uint64(cfg.SessionWindow),
		recvWindow:      uint64(cfg.SessionWindow),
		lastRecv:        now,
		lastSent:        now,
		now:             now,
		idle:            cfg.IdleTimeout,
		store:           store,
		fec:             peerParams.FEC == wire.FECParity,
	}
	s.peerSeen.InitInline(64, &store.peerSeen)
	s.baseMTU = min(wire.DefaultPacketSize, s.maxMTU)
	s.mtu = s.baseMTU
	s.stats.PacketSize = s.mtu
	s.initPMTU(0, s.maxMTU)
	if p := time.Duration(peerParams.IdleTimeoutMs) * time.Millisecond; p > 0 && (s.idle == 0 || p < s.idle) {
		s.idle = p
	}
	s.acks.init(cfg, &store.recvd, store.ackOut[:0])
	store.ackIn.Ranges = store.ackInRanges[:0]
	s.sent.first = &store.sent
	s.sent.firstMore = &store.sentMore
	var cc congestion.Controller
	if cubic != nil {
		cubic.Init(congestion.CubicConfig{MaxDatagramSize: s.mtu})
		cc = cubic
	} else {
		cc = cfg.NewController(s.mtu)
	}
	s.rec.init(cc, s.mtu) // path 0
	s.sched.init(store.levels[:0])
	s.events.ids = store.events[:0]
	return s, nil
}

// Err returns why the session ended, or nil while it is open.
func (s *Session) Err() error {
	if s.state == sessOpen {
		return nil
	}
	return s.closeErr
}

// Closed reports whether the session has ended and has nothing left to send.
func (s *Session) Closed() bool { return s.state == sessClosed }

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	st := s.stats
	st.SmoothedRTT = s.rec.rtt.Smoothed()
	st.MinRTT = s.rec.rtt.Min()
	for i := 0; i < s.numPaths(); i++ {
		if r := s.path(i); r.live {
			st.CongestionWindow += r.cc.Window()
			st.BytesInFlight += r.inFlight
		}
	}
	return st
}

// MaxPacketSize returns the largest packet Poll may produce now, tag
// included; the buffer given to Poll must be at least this long. It grows
// when path MTU discovery finds a larger size (and for a probe), so ask
// again before each Poll.
func (s *Session) MaxPacketSize() int {
	n := s.mtu
	for _, e := range s.extra {
		if e.live {
			n = max(n, e.mtu)
		}
	}
	_, probe := s.probeDue()
	return max(n, probe)
}

// Close closes the session abruptly with a code and reason: a CLOSE goes
// out with the next Poll, and every channel fails with the CloseError.
func (s *Session) Close(code uint32, reason string) {
	if s.state != sessOpen {
		return
	}
	s.closeCode, s.closeMsg = code, reason
	s.terminate(sessClosing, CloseError{Code: code, Reason: reason})
}

// Drain closes the session gracefully: no new channels are accepted (the
// peer's OPENs are refused with RefuseShutdown) or opened, the channels
// already open finish normally, and when the last one is released the
// session closes with CloseNormal.
func (s *Session) Drain() {
	if s.state != sessOpen || s.draining {
		return
	}
	s.draining = true
	s.checkDrained()
}

// checkDrained closes a draining session once no channel is left.
func (s *Session) checkDrained() {
	if s.draining && s.state == sessOpen && s.channels.Len() == 0 {
		s.Close(wire.CloseNormal, "drained")
	}
}

// terminate moves the session to a closing state and tells everyone. err
// is kept in the session (closeErrV): the session ends once, so the error
// handed out never changes.
func (s *Session) terminate(st sessState, err CloseError) {
	if s.state != sessOpen {
		return
	}
	s.closeErrV = err
	s.state, s.closeErr = st, &s.closeErrV
	for c := range s.channels.All() {
		s.releaseRings(c)
		s.emit(c, EventReadable|EventWritable|EventClosed)
	}
	s.emit(nil, EventSessionClosed)
}

// releaseRings gives back the stream rings of c that the ended session no
// longer needs, so that they return to their pool rather than wait for the
// garbage collector with the session: the send ring, as nothing is sent or
// acknowledged any more (a send buffer that was all acknowledged has
// released it already, and one that was not can no longer be, so what the
// engine decides from it stays the same); and an empty receive ring, as no
// data arrives any more. Bytes received and not yet read stay readable.
func (s *Session) releaseRings(c *channel) {
	if c.send != nil && !c.send.AllAcked() {
		c.send.Release()
	}
	if c.recv != nil {
		c.recv.ReleaseIdle()
	}
}

// Ping makes the next Poll send an ack-eliciting packet even with nothing
// else to send: the session initiator's first packet, which confirms the
// keys to the responder (docs/PROTOCOL.md §7.4).
func (s *Session) Ping() { s.pingNow = true }

// SendPathChallenge queues a PATH_CHALLENGE with data (channel 0).
func (s *Session) SendPathChallenge(data [8]byte) {
	s.pathChallenge, s.ctrlChallenge = data, true
}

// ChallengePending reports whether a PATH_CHALLENGE is queued and not yet
// in a packet: the owner compares it before and after Poll to learn which
// packet carries it.
func (s *Session) ChallengePending() bool { return s.ctrlChallenge }

// ResponsePending is ChallengePending for the PATH_RESPONSE to the peer's
// latest PATH_CHALLENGE, which goes back on the path the challenge came
// by (PROTOCOL.md §5.6).
func (s *Session) ResponsePending() bool { return s.ctrlResponse }

// Challenged reports whether a PATH_CHALLENGE arrived since the last
// call: the owner asks after each Receive, to learn the path it came by.
func (s *Session) Challenged() bool {
	c := s.challenged
	s.challenged = false
	return c
}

// SetCarrier tells the engine that its packets now travel another carrier
// (a path change from one transport to another, PROTOCOL.md §8.2):
// reliable or not (Config.ReliableCarrier), and this side's largest packet
// on it (0: Config.MaxPacketSize). Packets go back to the base size and
// path MTU discovery starts again after the next ACK, since the new
// path's MTU is unknown;
// the congestion controller and the RTT estimate carry over, bounded by
// the pacer and the smaller packets until the new path's ACKs correct
// them.
func (s *Session) SetCarrier(reliable bool, maxPacket int) {
	if maxPacket <= 0 {
		maxPacket = s.cfg.MaxPacketSize
	}
	s.cfg.ReliableCarrier = reliable
	s.maxMTU = max(min(maxPacket, int(s.peerParams.MaxPacketSize)), wire.MinPacketSize)
	s.setMTU(0, s.baseMTU)
	s.initPMTU(0, s.maxMTU)
	s.pmtu.waitAck = true // search once the new path has acknowledged a packet
}

// KeepAlive returns the interval after which an idle session sends a PING
// (Config.KeepAlive, or a third of the idle timeout).
func (s *Session) KeepAlive() time.Duration { return s.cfg.KeepAlive }

// PTOCount returns how many probe timeouts have fired in a row on path 0
// with ack-eliciting packets outstanding, 0 once an ACK arrives: two or
// more make the path in use suspect (PROTOCOL.md §6.6.5), and an owner
// with another path moves to it.
func (s *Session) PTOCount() int {
	if s.rec.eliciting == 0 {
		return 0
	}
	return s.rec.ptoCount
}

// PathResponse returns the data of the last PATH_RESPONSE received.
func (s *Session) PathResponse() [8]byte { return s.pathResult }
