package endpoint

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// releaseBatch is how many datagrams a reader consumes before it returns
// their credit to the peer itself, taking the session's lock; otherwise
// the worker returns it on its next run (fill), which costs no lock.
const releaseBatch = 16

// DatagramService delivers the datagrams of every datagram channel opened
// to (or from) its name, from every peer. Each channel keeps what it
// received in a bounded ring of its own, and the peer may send only as
// many datagrams as the application has room for (datagram credit,
// docs/PROTOCOL.md §5.10): a slow reader slows the senders down instead of
// losing their datagrams. Loss comes only from the network.
type DatagramService struct {
	ep     *Endpoint
	name   string
	closed chan struct{}
	once   sync.Once
	// notify (capacity 1) wakes a reader waiting for a channel to become
	// readable; a signal is never lost, since it is sent after the change
	// is visible under mu.
	notify chan struct{}

	// peersMu guards byPeer: the datagram channel to use for each peer.
	peersMu sync.Mutex
	byPeer  map[wire.PublicKey]*DatagramChannel

	// mu guards ready and the receive side of the service's channels (their
	// rx rings, from, queued, taken, backlog). It is taken after a session's
	// mu (fill runs under it), never before: a reader drops mu before it
	// takes a session's lock.
	mu      sync.Mutex
	ready   chanRing // channels with datagrams to read, in arrival order
	rxBase  int      // bytes of each channel's receive ring to begin with
	rxSpare int      // bytes the rings may still grow by beyond rxBase, all together
}

// ListenDatagrams registers a datagram service name on the endpoint.
func (ep *Endpoint) ListenDatagrams(name string) (*DatagramService, error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closed {
		return nil, ErrClosed
	}
	if ep.dgServices[name] != nil {
		return nil, ErrServiceTaken
	}
	svc := ep.newDatagramService(name)
	if ep.dgServices == nil {
		ep.dgServices = make(map[string]*DatagramService)
	}
	ep.dgServices[name] = svc
	return svc, nil
}

// newDatagramService makes a datagram service for name, registered or not.
// A channel's ring starts at the session's datagram queue size (and holds
// at least two datagrams of the largest size); while its reader is behind
// it grows, up to the endpoint's DatagramBuffer for the whole service,
// which is also what the sessions' credit allows (Config.DatagramBuffer).
func (ep *Endpoint) newDatagramService(name string) *DatagramService {
	q := ep.cfg.Session.DatagramQueue
	if q == 0 {
		q = mux.DefaultConfig().DatagramQueue
	}
	base := max(q, 2*(wire.MaxDatagramSize+rxHeader))
	// The rings may hold a little more than the credit granted for
	// (DatagramBuffer): what a sender may have in flight when the reader's
	// buffer fills, and what a wrapping ring leaves unused at its end. So
	// a peer that keeps to its credit is never dropped by the engine, and
	// a reader that stopped makes the sender drop (and count) instead.
	slack := mux.DatagramFlightQueues*q + 2*(wire.MaxDatagramSize+rxHeader)
	return &DatagramService{ep: ep, name: name, closed: make(chan struct{}), notify: make(chan struct{}, 1),
		byPeer: make(map[wire.PublicKey]*DatagramChannel), rxBase: base, rxSpare: max(ep.cfg.DatagramBuffer+slack-base, 0)}
}

// Read copies the next datagram into p, waiting until one arrives, the
// deadline passes (os.ErrDeadlineExceeded), ctx ends or the service closes.
// It returns the datagram's full length (more than len(p) when p was too
// short and the datagram was truncated), its channel, and the address the
// peer's session used when the datagram was queued. It allocates nothing.
func (svc *DatagramService) Read(ctx context.Context, deadline <-chan struct{}, p []byte) (int, *DatagramChannel, netip.AddrPort, error) {
	for {
		if n, dc, from, ok := svc.tryRead(p); ok {
			return n, dc, from, nil
		}
		select {
		case <-svc.notify:
		case <-deadline:
			return 0, nil, netip.AddrPort{}, os.ErrDeadlineExceeded
		case <-svc.closed:
			return 0, nil, netip.AddrPort{}, ErrClosed
		case <-ctx.Done():
			return 0, nil, netip.AddrPort{}, ctx.Err()
		}
	}
}

// tryRead reads one datagram from the first ready channel, if any.
func (svc *DatagramService) tryRead(p []byte) (int, *DatagramChannel, netip.AddrPort, bool) {
	svc.mu.Lock()
	dc := svc.ready.pop()
	if dc == nil {
		svc.mu.Unlock()
		return 0, nil, netip.AddrPort{}, false
	}
	n := dc.rx.pop(p)
	if dc.rx.n == 0 && len(dc.rx.buf) > svc.rxBase {
		// A ring grown while the reader was behind goes back to the
		// service's budget once the reader has caught up.
		svc.rxSpare += len(dc.rx.buf) - svc.rxBase
		dc.rx.buf = nil
	}
	from := dc.from
	dc.taken++
	release := 0
	if dc.taken >= releaseBatch || dc.rx.n == 0 && dc.backlog {
		release, dc.taken = dc.taken, 0
	}
	if dc.rx.n > 0 {
		svc.ready.push(dc) // round-robin between the service's channels
	} else {
		dc.queued = false
	}
	// Another channel is ready too: wake another reader for it.
	more := svc.ready.n > 1 || svc.ready.n == 1 && dc.rx.n == 0
	svc.mu.Unlock()
	if more {
		svc.signal()
	}
	if release > 0 {
		dc.release(release)
	}
	return n, dc, from, true
}

func (svc *DatagramService) signal() {
	select {
	case svc.notify <- struct{}{}:
	default:
	}
}

// Channel returns the datagram channel for peer, if one is open.
func (svc *DatagramService) Channel(peer wire.PublicKey) *DatagramChannel {
	svc.peersMu.Lock()
	defer svc.peersMu.Unlock()
	dc := svc.byPeer[peer]
	if dc != nil && dc.isDone() {
		delete(svc.byPeer, peer)
		return nil
	}
	return dc
}

// EachChannel calls f for each open datagram channel of the service, one
// per peer. f runs without the service's locks (a session's lock is taken
// before peersMu, never after: adopt runs under it).
func (svc *DatagramService) EachChannel(f func(*DatagramChannel)) {
	svc.peersMu.Lock()
	dcs := make([]*DatagramChannel, 0, len(svc.byPeer))
	for _, dc := range svc.byPeer {
		if !dc.isDone() {
			dcs = append(dcs, dc)
		}
	}
	svc.peersMu.Unlock()
	for _, dc := range dcs {
		f(dc)
	}
}

func (svc *DatagramService) adopt(dc *DatagramChannel) {
	svc.peersMu.Lock()
	if old := svc.byPeer[dc.s.peer]; old == nil || old.isDone() {
		svc.byPeer[dc.s.peer] = dc
	}
	svc.peersMu.Unlock()
}

// Close unregisters the service.
func (svc *DatagramService) Close() error {
	svc.ep.mu.Lock()
	if svc.ep.dgServices[svc.name] == svc {
		delete(svc.ep.dgServices, svc.name)
	}
	svc.ep.mu.Unlock()
	svc.shut()
	return nil
}

func (svc *DatagramService) shut() { svc.once.Do(func() { close(svc.closed) }) }

// DatagramChannel is one datagram channel of a session, delivering what
// it receives to its service.
type DatagramChannel struct {
	s        *Session
	id       uint32
	svc      *DatagramService
	writable chan struct{}
	done     chan struct{}
	doneOnce sync.Once

	// err (written under s.mu before done is closed) is why the channel
	// ended: the peer's refusal or close, ErrClosed, or the session's error.
	err error

	// creditSince (guarded by s.mu) is when a writer first found the queue
	// full for want of the peer's credit; zero while credit flows.
	creditSince time.Time

	// Guarded by svc.mu.
	rx      rxRing         // received datagrams the application has not read
	from    netip.AddrPort // the session's path when the ring was last filled
	queued  bool           // in svc.ready
	taken   int            // datagrams read whose credit is not yet returned
	backlog bool           // the engine holds datagrams the ring had no room for

	// Label is the layer above's to cache per-channel data in (package net
	// keeps the peer's *Addr there, so ReadFrom allocates nothing).
	Label atomic.Value
}

func (dc *DatagramChannel) isDone() bool {
	select {
	case <-dc.done:
		return true
	case <-dc.s.doneCh:
		return true
	default:
		return false
	}
}

func (s *Session) newDatagramChannel(id uint32, svc *DatagramService) *DatagramChannel {
	return &DatagramChannel{s: s, id: id, svc: svc, writable: make(chan struct{}, 1), done: make(chan struct{})}
}

// addDatagramChannel registers dc (with s.mu held); the map is made for
// the first, as most sessions carry no datagrams.
func (s *Session) addDatagramChannel(id uint32, dc *DatagramChannel) {
	if s.dgChans == nil {
		s.dgChans = make(map[uint32]*DatagramChannel)
	}
	s.dgChans[id] = dc
	if f := s.ep.cfg.DatagramFEC; f.Repairs > 0 {
		// Protect what this side sends, if the session has FEC (a peer
		// that did not propose or accept it gets plain datagrams).
		s.m.SetDatagramFEC(id, f.Group, f.Repairs)
	}
}

// OpenDatagram opens a datagram channel to svc's name on the session; what
// the peer sends back on it arrives at svc.
func (s *Session) OpenDatagram(svc *DatagramService, priority uint8) (*DatagramChannel, error) {
	s.mu.Lock()
	id, err := s.m.OpenDatagram(svc.name, priority)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	dc := s.newDatagramChannel(id, svc)
	s.addDatagramChannel(id, dc)
	s.mu.Unlock()
	svc.adopt(dc)
	s.kick()
	return dc, nil
}

// minCreditWait is the least a writer waits for the peer's datagram credit
// before it drops what it cannot queue (see Send): long enough that a
// receiving worker descheduled on a busy machine does not turn into loss,
// short enough that a writer whose peer stopped reading is not held up.
const minCreditWait = 100 * time.Millisecond

// Send queues one datagram (up to 65,507 bytes), as a UDP socket does: it
// never waits for the peer's application. While the channel's queue is
// full because the path is congested (the congestion window, pacing) it
// waits for room until deadline passes, as a full socket send buffer
// does. When the queue is full because the peer's application holds a full
// window of datagrams unread (no credit, PROTOCOL.md §5.10), it waits at
// most minCreditWait (or four round trips, if longer) for credit to return;
// after that, and until the peer grants credit again, the datagram is
// dropped at once and counted (mux.Stats.DatagramsUnsent), and Send
// returns nil, as UDP drops what a receiver has no room for. p is copied
// and is the caller's again on return.
func (dc *DatagramChannel) Send(p []byte, deadline <-chan struct{}) error {
	var timer *time.Timer // only while waiting for credit: the rare case
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if dc.isDone() {
			return dc.Err()
		}
		s := dc.s
		s.mu.Lock()
		err := s.m.SendDatagram(dc.id, p)
		var creditWait time.Duration
		if err == mux.ErrQueueFull && s.m.DatagramCreditBlocked(dc.id) {
			now := time.Now()
			if dc.creditSince.IsZero() {
				dc.creditSince = now
			}
			creditWait = max(minCreditWait, 4*s.m.Stats().SmoothedRTT) - now.Sub(dc.creditSince)
			if creditWait <= 0 {
				s.m.DatagramUnsent()
				s.mu.Unlock()
				return nil
			}
		} else {
			dc.creditSince = time.Time{}
		}
		s.mu.Unlock()
		if err != mux.ErrQueueFull {
			if err == nil {
				s.kick()
			}
			return err
		}
		var expired <-chan time.Time
		if creditWait > 0 {
			if timer == nil {
				timer = time.NewTimer(creditWait)
			} else {
				timer.Reset(creditWait)
			}
			expired = timer.C
		}
		select {
		case <-dc.writable:
		case <-expired:
		case <-deadline:
			return os.ErrDeadlineExceeded
		case <-dc.done:
			return ErrClosed
		case <-s.doneCh:
			return s.err
		}
	}
}

// Session returns the channel's session.
func (dc *DatagramChannel) Session() *Session { return dc.s }

// release returns the credit of n datagrams the application read, moves
// what the engine held back into the ring, and runs the session if a
// MAX_DATA is now due.
func (dc *DatagramChannel) release(n int) {
	s := dc.s
	s.mu.Lock()
	kick := s.m.ReleaseDatagrams(dc.id, n)
	kick = dc.fill() || kick
	s.mu.Unlock()
	if kick {
		s.kick()
	}
}

// fill moves received datagrams from the engine into the channel's ring,
// one copy, and returns the credit of those the application read since
// (called with s.mu held). It reports whether a MAX_DATA is now due.
func (dc *DatagramChannel) fill() bool {
	s, svc := dc.s, dc.svc
	svc.mu.Lock()
	taken := dc.taken
	dc.taken = 0
	dc.from = s.at.addr
	for i := 0; i < 4096; i++ {
		n := s.m.NextDatagramLen(dc.id)
		if n < 0 {
			dc.backlog = false
			break
		}
		dst := dc.rx.reserve(n, svc.rxBase)
		if dst == nil && svc.growRing(dc, n) {
			dst = dc.rx.reserve(n, svc.rxBase)
		}
		if dst == nil {
			dc.backlog = true // taken from the engine once the reader makes room
			break
		}
		s.m.TakeDatagram(dc.id, dst)
	}
	woke := false
	if dc.rx.n > 0 && !dc.queued {
		dc.queued = true
		svc.ready.push(dc)
		woke = true
	}
	svc.mu.Unlock()
	if woke {
		svc.signal()
	}
	return taken > 0 && s.m.ReleaseDatagrams(dc.id, taken)
}

// growRing grows dc's ring, within the service's budget, so that it takes
// a datagram of n more bytes (called with svc.mu held). It reports false
// when the budget has no room: the datagram then waits in the engine,
// whose own queue drops what overflows it, counted.
func (svc *DatagramService) growRing(dc *DatagramChannel, n int) bool {
	cur := len(dc.rx.buf)
	need := dc.rx.used() + rxHeader + n
	size := max(2*cur, svc.rxBase)
	for size < need {
		size *= 2
	}
	if size-cur > svc.rxSpare {
		size = cur + svc.rxSpare
		if size < need {
			return false
		}
	}
	svc.rxSpare -= size - cur
	dc.rx.grow(size)
	return true
}

// incomingDatagram accepts a datagram channel the peer opened, if a
// datagram service has its name (called with s.mu held).
func (s *Session) incomingDatagram(ch uint32, service string) {
	s.ep.mu.Lock()
	svc := s.ep.dgServices[service]
	s.ep.mu.Unlock()
	if svc == nil {
		s.m.Refuse(ch, wire.RefuseNoService, fmt.Sprintf("no datagram service %q", service))
		return
	}
	dc := s.newDatagramChannel(ch, svc)
	s.addDatagramChannel(ch, dc)
	s.m.Accept(ch)
	svc.adopt(dc)
}

// datagramEvents moves received datagrams to the channel's ring and wakes
// blocked senders (called with s.mu held, by the worker running the
// session, which sends any MAX_DATA this queues before it finishes).
func (s *Session) datagramEvents(dc *DatagramChannel, k mux.EventKind) {
	if k&mux.EventReadable != 0 {
		dc.fill()
	}
	if k&(mux.EventWritable|mux.EventClosed) != 0 {
		wake(dc.writable, true)
	}
	if err := s.m.ChannelErr(dc.id); err != nil && dc.err == nil {
		dc.err = err // refused: the channel stays in the engine until closed
		k |= mux.EventClosed
		dc.svc.signal()
	}
	if k&mux.EventClosed != 0 {
		if dc.err == nil {
			dc.err = ErrClosed
		}
		dc.doneOnce.Do(func() { close(dc.done) })
	}
}

// closeDatagrams ends every datagram channel of an ended session.
func (s *Session) closeDatagrams() {
	for _, dc := range s.dgChans {
		if dc.err == nil {
			dc.err = s.err
		}
		dc.doneOnce.Do(func() { close(dc.done) })
		dc.svc.signal()
	}
}

// OpenDatagramChannel opens a datagram channel to service on the session,
// with a service of its own that is not registered on the endpoint: it
// receives only what comes back on this channel, as a connected UDP
// socket does (read it with ReadChannel). Closing the channel and the
// service is the caller's.
func (s *Session) OpenDatagramChannel(service string, priority uint8) (*DatagramChannel, *DatagramService, error) {
	svc := s.ep.newDatagramService(service)
	dc, err := s.OpenDatagram(svc, priority)
	if err != nil {
		svc.shut()
		return nil, nil, err
	}
	return dc, svc, nil
}

// Close ends the channel: the engine forgets it, the peer is told, and
// blocked calls return.
func (dc *DatagramChannel) Close() {
	s := dc.s
	s.mu.Lock()
	s.m.CloseChannel(dc.id, 0)
	delete(s.dgChans, dc.id)
	if dc.err == nil {
		dc.err = ErrClosed
	}
	dc.doneOnce.Do(func() { close(dc.done) })
	s.mu.Unlock()
	s.kick()
	dc.svc.signal()
}

// Err returns why the channel ended, once it has (Done is closed).
func (dc *DatagramChannel) Err() error {
	select {
	case <-dc.done:
		return dc.err
	case <-dc.s.doneCh:
		if dc.s.err != nil {
			return dc.s.err
		}
		return ErrClosed
	}
}

// ReadChannel is Read for a service with the one channel dc (see
// Session.OpenDatagramChannel): once dc has ended and nothing it received is
// left unread, it returns dc's error.
func (svc *DatagramService) ReadChannel(ctx context.Context, deadline <-chan struct{}, p []byte, dc *DatagramChannel) (int, error) {
	for {
		if n, _, _, ok := svc.tryRead(p); ok {
			return n, nil
		}
		if dc.isDone() {
			return 0, dc.Err()
		}
		select {
		case <-svc.notify:
		case <-dc.done:
		case <-dc.s.doneCh:
		case <-deadline:
			return 0, os.ErrDeadlineExceeded
		case <-svc.closed:
			return 0, ErrClosed
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// chanRing is a FIFO of channels, grown by doubling; it holds each
// channel at most once (queued), so it is bounded by the channel count.
type chanRing struct {
	buf  []*DatagramChannel
	head int
	n    int
}

func (q *chanRing) push(dc *DatagramChannel) {
	if q.n == len(q.buf) {
		grown := make([]*DatagramChannel, max(8, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			grown[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = dc
	q.n++
}

func (q *chanRing) pop() *DatagramChannel {
	if q.n == 0 {
		return nil
	}
	dc := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return dc
}
