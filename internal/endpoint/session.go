package endpoint

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havenproto/haven/internal/idtable"
	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// Session is one session with one peer. Its engine (mux.Session) and keys
// (secure.Transport) are run by the endpoint's workers; applications use
// it through Streams and the methods here.
type Session struct {
	ep        *Endpoint
	peer      wire.PublicKey
	localEph  uint32
	remoteID  wire.PeerID
	suite     wire.Suite // the session's construction (PROTOCOL.md §2.1), fixed
	initiator bool

	// ending is set once the session starts to end (closed by either side,
	// or released). It is read without the session's lock, so the
	// endpoint can check it while holding its own lock: the endpoint lock is
	// never held while a session lock is taken (lock order: session, then
	// endpoint).
	ending atomic.Bool

	// state makes runs of a session strictly sequential: runIdle, runQueued
	// (in the run queue), runRunning, or runAgain (kicked while running:
	// the running worker goes round once more instead of queueing it).
	state atomic.Int32
	// writersWaiting counts the Writes waiting to run the session on their
	// own goroutines (Session.runWritten): a worker that would go round
	// again hands the session over instead.
	writersWaiting atomic.Int32

	// inMu guards inbox: the reader goroutine appends, the running worker
	// takes. It is separate from mu so the reader never waits for a
	// session's processing.
	inMu    sync.Mutex
	inbox   *inBatch // nil while empty: batches come from inPool
	inBytes int      // bytes in inbox
	inPkts  int      // packets in inbox, each datagram of a GRO train counted
	inShut  bool     // the session ended: the inbox takes no more packets
	hsIn    [][]byte // handshake replies for a rekey in progress

	// mu guards everything below. The worker running the session holds it
	// while it processes packets and builds replies; application calls hold
	// it for their buffer operations. Never held across socket I/O.
	mu     sync.Mutex
	m      *mux.Session
	lent   int              // packet buffer bytes the session's streams hold lent (lent.go)
	tr     secure.Transport // held by value: one allocation less per session
	at     path             // the validated path (links.go)
	highPN uint64           // highest packet number authenticated
	// A path being validated (PROTOCOL.md §6.4): the peer's newest packet
	// came from candidate; until a PATH_RESPONSE to challenge arrives from
	// there, at most 3× the bytes received from it go there (amp). Or a
	// path this side probes (probe.go): the packet with the challenge goes
	// there whatever amp says.
	candidate path
	challenge [8]byte
	amp       secure.AntiAmplification
	moves     int // validated path changes
	// respondOn is the path the peer's latest PATH_CHALLENGE came by,
	// where the PATH_RESPONSE goes (route).
	respondOn path
	// mp holds the paths beyond the engine's path 0 (multipath.go), nil
	// while the session has one.
	mp *multipath
	// onStream mirrors at.reliable() for readers without mu (Stream).
	onStream atomic.Bool
	// probe is the return to UDP of a session that fell back to TCP
	// (probe.go).
	probe   udpProbe
	backups backups                     // failover.go
	chans   idtable.Table[*Stream]      // the first few inline: a session's streams cost no map
	dgChans map[uint32]*DatagramChannel // nil until the first datagram channel
	// served remembers the last few services the peer accepted a stream
	// channel to on this session (servedNames, stream.go), so a dial to
	// one of them need not wait a round trip for the next ACCEPT.
	served servedNames
	rekey  *secure.Initiator
	// answeredAt is when a responder's session answered the handshake,
	// until the first packet under its keys arrives: the time between is
	// its first round-trip estimate (mux.Session.SetInitialRTT).
	answeredAt time.Time
	// heard says a responder's session has had a packet from the peer
	// under its keys (promote); set once, read under the endpoint's mu.
	heard atomic.Bool
	// due and hidx are the session's place in sessionTimers (timers.go),
	// guarded by its mu, not by this one.
	due  time.Time
	hidx int
	// cur collects the packets built this run, prepared for sealing and
	// encrypted after unlocking (flush.go). It is set only during a run
	// (runOnce, closeNow): a run's scratch comes from runPool and goes
	// back after its flush, so an idle session holds none and a new one
	// allocates none.
	cur    *run
	cwg    sync.WaitGroup // the crypto workers sealing this run's chunks
	trc    *tracer        // the session's trace (trace.go), nil unless Config.Trace
	keyed  time.Time      // when the newest keys were installed (handshake or rekey)
	ended  bool
	err    error
	doneCh chan struct{}
}

// outPacket is a sealed packet and where it goes. arena is the index of
// the run's arena buf lies in, or -1 for a packet with its own slice.
type outPacket struct {
	buf   []byte
	to    path
	arena int32
}

// startSession creates and registers the session of a completed handshake
// under our ephemeral value local.
func (ep *Endpoint) startSession(local uint32, est *secure.Established, at path, now time.Time) bool {
	role := mux.Responder
	if est.Initiator {
		role = mux.Initiator
	}
	cfg := ep.sessionConfig(at.l)
	var trc *tracer
	if ep.cfg.Trace != nil {
		if w := ep.cfg.Trace(TraceInfo{Peer: est.Peer, Initiator: est.Initiator, Start: now}); w != nil {
			trc = newTracer(w, TraceInfo{Peer: est.Peer, Initiator: est.Initiator, Start: now})
			cfg.Trace = trc.event
		}
	}
	m, err := mux.New(cfg, role, est.LocalID, est.RemoteID, est.PeerParams, est.Align(), now)
	if err != nil {
		if trc != nil {
			trc.close()
		}
		return false
	}
	s := &Session{
		ep: ep, peer: est.Peer, localEph: local, remoteID: est.RemoteID, suite: est.Suite, initiator: est.Initiator,
		m: m, at: at, doneCh: make(chan struct{}), trc: trc, keyed: now,
	}
	s.onStream.Store(at.reliable())
	s.probe.start(s, now)
	s.backups.init(s, now)
	if s.tr.Init(est, ep.cfg.Limits, now) != nil {
		return false
	}
	if est.Initiator {
		// The handshake's round trip is the session's first RTT estimate,
		// so a lost first packet (the key confirmation, a dial's OPEN) is
		// sent again after a few round trips, not after 1 s, 2 s, 4 s ...
		m.SetInitialRTT(est.RTT)
		m.Ping() // key confirmation: the initiator speaks first
	} else {
		s.answeredAt = now // the response leaves now; see takeInbox
		m.Advertise(ep.cfg.Advertise)
	}
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		s.tr.Close()
		return false
	}
	ep.sessions[local] = s
	if old := ep.byPeer[est.Peer]; old == nil || old.closing() {
		ep.byPeer[est.Peer] = s
	}
	ep.mu.Unlock()
	s.kick()
	return true
}

const (
	runIdle int32 = iota
	runQueued
	runRunning
	runAgain
)

// kick makes sure a worker runs the session soon.
func (s *Session) kick() {
	for {
		switch st := s.state.Load(); st {
		case runIdle:
			if s.state.CompareAndSwap(runIdle, runQueued) {
				s.ep.runq.push(s)
				return
			}
		case runRunning:
			if s.state.CompareAndSwap(runRunning, runAgain) {
				return
			}
		default: // already queued, or will run again
			return
		}
	}
}

// run is a worker's turn with the session: it repeats runOnce while the
// session is kicked during a turn. Never concurrent with itself (state).
func (s *Session) run() {
	s.state.Store(runRunning)
	for {
		s.runOnce()
		if s.state.CompareAndSwap(runRunning, runIdle) {
			return
		}
		if s.writersWaiting.Load() > 0 {
			// runAgain, and a writer waits to take the session: it runs
			// what the kick was for (runWritten). A writer that gave up
			// meanwhile kicked while the state was still runAgain, which
			// queued nothing: unless the count shows one still waiting,
			// take the session back.
			s.state.Store(runIdle)
			if s.writersWaiting.Load() > 0 || !s.state.CompareAndSwap(runIdle, runRunning) {
				return
			}
			continue
		}
		s.state.Store(runRunning) // runAgain: go round once more
	}
}

// runOnce processes everything pending and writes what it produced.
func (s *Session) runOnce() {
	r := runPool.get()
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		runPool.put(r)
		return
	}
	s.cur = r
	now := time.Now()
	s.takeInbox(now)
	s.runRekey(now)
	s.dispatch()
	if s.tr.Confirmed() {
		s.backups.check(s, now)
		s.openNext(now)
		s.retirePaths(now, nil)
		s.probe.run(s, now)
		s.produce(now)
		s.dispatch() // what Poll emitted (its timers, say): no later run is due for it
	}
	s.cur = nil
	finished := s.m.Closed()
	if !finished {
		s.arm(now)
	}
	s.mu.Unlock()

	s.sealJobs(r.jobs, &s.cwg)
	s.flush(r.out, &r.ws)
	r.recycle()
	runPool.put(r)
	if finished {
		s.finish()
	}
}

// producePackets bounds the packets one run builds (produce): two full
// arenas, two GSO messages of 44 packets, at 1,472 bytes (IPv4 at MTU
// 1,500). The pacer's rate burst (congestion.MaxRateBurst) covers as much.
const producePackets = 88

// produce polls the engine into the run's arenas (flush.go) and prepares
// each packet for sealing; the packets are encrypted in place after the
// lock is released (sealJobs).
func (s *Session) produce(now time.Time) {
	size := s.m.MaxPacketSize()
	r := s.cur
	// At most producePackets per run: the engine is built under s.mu,
	// which every Write and Send takes too, so a longer run keeps the
	// application waiting; a session with more to send goes round again at
	// once (kick, below). Measured at MTU 1,500 with the pacer's
	// millisecond bursts: 64 gave bulk about 1,220 MB/s and datagrams 750;
	// 256, 1,070 and 540; 32, 1,165 and 730. With 1,472-byte packets and a
	// pacer burst to match (2026-12-07): 88 against 64, bulk +5 %, 8
	// streams +3–6 %, datagrams −4 %, request/response and the small
	// stream beside lossy bulk unchanged; 132, bulk +3 %, 8 streams +10 %.
	for i := 0; i < producePackets; i++ {
		b, arena := r.packetSpace(size)
		if b == nil {
			break // the run's arenas are full
		}
		pending, answering := s.m.ChallengePending(), s.m.ResponsePending()
		n, id := s.m.PollPath(b, now)
		if n == 0 {
			return
		}
		challenged := pending && !s.m.ChallengePending() // this packet carries it
		answered := answering && !s.m.ResponsePending()
		r.jobs = append(r.jobs, secure.SealJob{})
		if err := s.tr.Prepare(b[:n], now, &r.jobs[len(r.jobs)-1]); err != nil {
			r.jobs = r.jobs[:len(r.jobs)-1]
			if errors.Is(err, secure.ErrKeysExhausted) {
				s.m.Close(wire.CloseKeyExhausted, "keys exhausted")
			}
			return
		}
		r.aoff += n + wire.TagLen
		// Filled in place, not appended as a literal: see route.
		r.out = append(r.out, outPacket{})
		o := &r.out[len(r.out)-1]
		o.buf, o.arena = b[:n+wire.TagLen], arena
		s.route(&o.to, n+wire.TagLen, id, challenged, answered)
	}
	s.kick() // more to send than one run should take: come back
}

// arm sets the session's timer to the engine's next deadline.
func (s *Session) arm(now time.Time) {
	d := s.m.Deadline()
	for _, pd := range [...]time.Time{s.probe.deadline(), s.backups.deadline(), s.pathDeadline()} {
		if !pd.IsZero() && (d.IsZero() || pd.Before(d)) {
			d = pd
		}
	}
	if s.rekey != nil {
		if _, rd, _ := s.rekey.Poll(now); !rd.IsZero() && (d.IsZero() || rd.Before(d)) {
			d = rd
		}
	}
	if d.IsZero() {
		sessionTimers.set(s, time.Time{})
		return
	}
	sessionTimers.set(s, d)
}

// dispatch delivers the engine's events to streams and listeners.
func (s *Session) dispatch() {
	for {
		ev, ok := s.m.PollEvent()
		if !ok {
			return
		}
		if ev.Channel == 0 {
			if ev.Kind&mux.EventAddresses != 0 {
				s.backups.learn(s)
			}
			if ev.Kind&mux.EventSessionClosed != 0 {
				s.ending.Store(true)
				s.err = s.m.Err()
				for st := range s.chans.All() {
					st.notify(true, true)
				}
				s.ep.forget(s, false)
			}
			continue
		}
		if ev.Kind&mux.EventIncoming != 0 {
			s.incoming(ev.Channel)
		}
		if dc := s.dgChans[ev.Channel]; dc != nil {
			s.datagramEvents(dc, ev.Kind)
			if ev.Kind&mux.EventClosed != 0 {
				delete(s.dgChans, ev.Channel)
			}
		}
		if st := s.chans.Lookup(ev.Channel); st != nil {
			if ev.Kind&mux.EventAccepted != 0 {
				st.accepted()
			} else if !st.wasAccepted && refused(s.m.ChannelErr(ev.Channel)) {
				s.served.remove(st.service) // the next dial waits and sees it
			}
			st.notify(ev.Kind&(mux.EventReadable|mux.EventClosed) != 0,
				ev.Kind&(mux.EventWritable|mux.EventClosed) != 0)
			if ev.Kind&mux.EventClosed != 0 && st.released() {
				s.chans.Remove(ev.Channel)
			}
		}
	}
}

// closing reports whether the session is ending (not for new channels).
// It takes no lock (see ending).
func (s *Session) closing() bool { return s.ending.Load() }

// Err returns why the session ended, or nil.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Err()
}

// Peer returns the peer's static public key.
func (s *Session) Peer() wire.PublicKey { return s.peer }

// RemoteAddr returns the peer's current address.
func (s *Session) RemoteAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at.addr
}

// Stats returns the engine's counters.
func (s *Session) Stats() mux.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Stats()
}

// FECStats returns the engine's FEC counters (PROTOCOL.md §5.11).
func (s *Session) FECStats() mux.FECStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.FECStats()
}

// Close closes the session with a code and reason.
func (s *Session) Close(code uint32, reason string) {
	s.ending.Store(true)
	s.mu.Lock()
	s.m.Close(code, reason)
	s.mu.Unlock()
	s.kick()
}

// closeNow closes the session and sends its CLOSE at once (endpoint
// shutdown, when no worker will run again).
func (s *Session) closeNow(code uint32, reason string) {
	s.ending.Store(true)
	s.mu.Lock()
	s.m.Close(code, reason)
	now := time.Now()
	r := runPool.get() // its own: a worker's run may be in flight meanwhile
	s.cur = r
	s.dispatch()
	if s.tr.Confirmed() {
		s.produce(now)
	}
	s.cur = nil
	s.mu.Unlock()
	s.sealJobs(r.jobs, new(sync.WaitGroup))
	s.flush(r.out, &r.ws)
	r.recycle()
	runPool.put(r)
}

// finish removes an ended session.
func (s *Session) finish() {
	s.ep.forget(s, true)
	s.release()
}

// release stops the session's timer and wakes everyone waiting on it.
func (s *Session) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	s.ending.Store(true)
	if s.trc != nil {
		s.trc.close()
		s.trc = nil
	}
	sessionTimers.set(s, time.Time{})
	if s.err == nil {
		s.err = s.m.Err()
		if s.err == nil {
			s.err = ErrClosed
		}
	}
	for st := range s.chans.All() {
		st.notify(true, true)
	}
	s.closeDatagrams()
	close(s.doneCh)
	s.tr.Close()
	s.shutInbox()
}

// shutInbox gives back the buffers of packets queued for an ended session
// (no run will apply them) and refuses further packets, so that an ended
// session keeps no pool buffer: a read buffer handed over with a large
// packet would otherwise never go back to readPool.
func (s *Session) shutInbox() {
	s.inMu.Lock()
	batch := s.inbox
	s.inbox, s.inBytes, s.inPkts, s.inShut = nil, 0, 0, true
	s.inMu.Unlock()
	if batch != nil {
		batch.recycle()
	}
}

// promote makes s, a responder's session on which the peer has just
// spoken for the first time, the peer's session for reuse (byPeer) in
// place of one the peer never spoke on. When a response is lost, the
// initiator retransmits with a fresh initiation and this side answers
// both; byPeer names the first, which the initiator may never have
// completed (PROTOCOL.md §7.6), and a session with the peer (Live, a dial
// to it) must not be that one. Called by the session's worker, s.mu held.
func (ep *Endpoint) promote(s *Session) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.sessions[s.localEph] != s {
		return // already forgotten
	}
	if w := ep.byPeer[s.peer]; w == nil || w != s && !w.initiator && !w.heard.Load() {
		ep.byPeer[s.peer] = s
	}
}

// forget removes s from the endpoint's reuse table (so new dials make a
// new session), and with all from the session table too.
func (ep *Endpoint) forget(s *Session, all bool) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.byPeer[s.peer] == s {
		delete(ep.byPeer, s.peer)
	}
	if all && ep.sessions[s.localEph] == s {
		delete(ep.sessions, s.localEph)
		ep.checkDrainedLocked()
	}
}

// Stream reports whether the session's path is on a stream (TCP)
// transport, which reports itself reliable, rather than a UDP socket.
func (s *Session) Stream() bool { return s.onStream.Load() }

// Suite returns the session's construction (PROTOCOL.md §2.1).
func (s *Session) Suite() wire.Suite { return s.suite }

// IDs returns the session's peer ids: ours and the peer's, as they appear
// in the header of the packets we receive (destination, source).
func (s *Session) IDs() (local, remote wire.PeerID) {
	return wire.MakePeerID(s.ep.id.AuthTagFor(s.suite), s.localEph), s.remoteID
}

// PathChanges returns how many times the peer's address changed and the
// new path was validated.
func (s *Session) PathChanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.moves
}

// Channels returns how many channels the session has open, stream and
// datagram.
func (s *Session) Channels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.dgChans)
	for range s.chans.All() {
		n++
	}
	return n
}

// LastHandshake returns when the session's newest keys were installed:
// its handshake, or its latest rekey.
func (s *Session) LastHandshake() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyed
}

// KeySets returns how many key sets the session has installed: 1 for its
// handshake, plus one per rekey.
func (s *Session) KeySets() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tr.KeySets()
}
