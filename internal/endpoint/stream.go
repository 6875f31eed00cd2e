package endpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// Service is a named accept queue of stream channels (the multiplexing
// listener's unit: PROTOCOL.md §5.7's service name). The empty name is the
// default service.
type Service struct {
	ep      *Endpoint
	name    string
	streams chan *Stream
	closed  chan struct{}
	once    sync.Once
}

// Listen registers the service name on the endpoint.
func (ep *Endpoint) Listen(name string) (*Service, error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closed {
		return nil, ErrClosed
	}
	if ep.services[name] != nil {
		return nil, ErrServiceTaken
	}
	svc := &Service{ep: ep, name: name, streams: make(chan *Stream, ep.cfg.Backlog), closed: make(chan struct{})}
	if ep.services == nil {
		ep.services = make(map[string]*Service)
		ep.hints = make(map[uint32]int)
	}
	ep.services[name] = svc
	ep.hints[wire.ServiceHint(name)]++
	return svc, nil
}

// serves answers a handshake's service hint (secure.ResponderConfig.Serves):
// whether a service whose name has that hint is registered. The stream the
// initiator then opens may still be refused (its service closed meanwhile,
// a full backlog, or a name that only shares the hint); the refusal then
// reaches its first Read or Write.
func (ep *Endpoint) serves(hint uint32) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.hints[hint] > 0
}

// Accept waits for the next channel opened to this service. It returns as
// soon as the peer's OPEN arrives, before any data.
func (svc *Service) Accept(ctx context.Context) (*Stream, error) {
	select {
	case st := <-svc.streams:
		return st, nil
	case <-svc.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close unregisters the service; channels still queued are closed.
func (svc *Service) Close() error {
	svc.ep.mu.Lock()
	if svc.ep.services[svc.name] == svc {
		delete(svc.ep.services, svc.name)
		h := wire.ServiceHint(svc.name)
		if svc.ep.hints[h]--; svc.ep.hints[h] == 0 {
			delete(svc.ep.hints, h)
		}
	}
	svc.ep.mu.Unlock()
	svc.shut()
	return nil
}

func (svc *Service) shut() {
	svc.once.Do(func() {
		close(svc.closed)
		for {
			select {
			case st := <-svc.streams:
				st.Close()
			default:
				return
			}
		}
	})
}

// incoming routes a channel the peer opened to its service, or refuses it
// with a reason naming the service (called with s.mu held).
func (s *Session) incoming(ch uint32) {
	info, _ := s.m.Info(ch)
	if info.Type == wire.ChannelDatagram {
		s.incomingDatagram(ch, info.Service)
		return
	}
	s.ep.mu.Lock()
	svc := s.ep.services[info.Service]
	s.ep.mu.Unlock()
	if svc == nil {
		s.m.Refuse(ch, wire.RefuseNoService, fmt.Sprintf("no service %q", info.Service))
		return
	}
	st := newStream(s, ch, info.Service)
	st.wasAccepted = true // by us, now
	select {
	case svc.streams <- st:
		s.chans.Put(ch, st)
		s.m.Accept(ch)
	default:
		s.m.Refuse(ch, wire.RefuseChannelLimit, fmt.Sprintf("service %q: accept backlog full", info.Service))
	}
}

// Stream is a reliable stream channel with net.Conn semantics: blocking
// Read and Write honouring deadlines, half-close, and Close that ends both
// directions and unblocks every call. Safe for concurrent use.
//
// A stream costs one allocation, itself, until a call has to wait: a
// channel open is on the path of every request that opens one (issue
// #7). The wake-up channels are made by the first call that blocks in
// each direction, and the deadlines' channels and timers only when a call
// blocks with a deadline set. Close and new deadlines wake blocked calls
// through readable and writable.
type Stream struct {
	s       *Session
	id      uint32
	service string

	// readable and writable (cap 1) hold a pending wake-up for blocked
	// readers and writers: the session posts them on events, Close and
	// Set*Deadline post them too, and a woken call that finds the stream
	// closed posts again for the next one blocked. Guarded by the
	// session's mu: a call makes its channel under mu in the same critical
	// section as its last check of the condition it waits for, and every
	// wake-up is posted under mu, so none is lost and a stream nobody
	// waits on has no channel (nil: wake posts nothing).
	readable, writable chan struct{}
	// acceptCh (made by the first WaitAccepted that has to wait) is closed,
	// and wasAccepted set, when the peer accepts. Both are guarded by the
	// session's mu, which dispatch holds when it delivers EventAccepted.
	acceptCh    chan struct{}
	wasAccepted bool
	rd, wd      Deadline
	// rdSet and wdSet are set by the first Set*Deadline: until then no
	// call selects on (and so makes) the deadline's channel.
	rdSet, wdSet atomic.Bool
	isClosed     atomic.Bool
	// wmu makes each Write and ReadFrom whole: one at a time queues its
	// bytes (as a TCP connection's writes do), and ReadFrom's reservation
	// in the send buffer (mux.Session.ReserveWrite) stays the only one
	// while it fills it outside the session's lock.
	wmu sync.Mutex
}

func newStream(s *Session, id uint32, service string) *Stream {
	return &Stream{s: s, id: id, service: service}
}

// waitCh returns *ch, making it (with s.mu held): the channel a call about
// to block waits on.
func waitCh(ch *chan struct{}) chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{}, 1)
	}
	return *ch
}

// wakeUnlocked posts wake-ups from outside the session's lock (Close,
// deadlines, a closed call passing Close's wake-up on).
func (st *Stream) wakeUnlocked(r, w bool) {
	st.s.mu.Lock()
	st.notify(r, w)
	st.s.mu.Unlock()
}

// rdWait and wdWait return the deadline's channel, or nil (never ready in
// a select) while no deadline was ever set.
func (st *Stream) rdWait() <-chan struct{} {
	if !st.rdSet.Load() {
		return nil
	}
	return st.rd.Wait()
}

func (st *Stream) wdWait() <-chan struct{} {
	if !st.wdSet.Load() {
		return nil
	}
	return st.wd.Wait()
}

// OpenStream opens a stream channel to service on the session. It does not
// wait for the peer (see WaitAccepted): data may be written at once.
func (s *Session) OpenStream(service string, priority uint8) (*Stream, error) {
	s.mu.Lock()
	id, err := s.m.OpenStream(service, priority)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	st := newStream(s, id, service)
	s.chans.Put(id, st)
	s.mu.Unlock()
	s.kick()
	return st, nil
}

// ID returns the channel id; Session the session it belongs to.
func (st *Stream) ID() uint32        { return st.id }
func (st *Stream) Session() *Session { return st.s }
func (st *Stream) Service() string   { return st.service }
func (st *Stream) notify(r, w bool)  { wake(st.readable, r); wake(st.writable, w) } // s.mu held

// accepted notes the peer's ACCEPT (called with s.mu held).
func (st *Stream) accepted() {
	if st.wasAccepted {
		return
	}
	st.wasAccepted = true
	st.s.served.add(st.service)
	if st.acceptCh != nil {
		close(st.acceptCh)
	}
}
func (st *Stream) released() bool { return st.isClosed.Load() }
func wake(ch chan struct{}, on bool) {
	if on && ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// servedNames is a session's few most recent services that accepted a
// stream channel, without a map: most sessions use one or two services.
// A refusal removes its service. Guarded by the session's mu.
type servedNames struct {
	names [4]string
	valid [4]bool
	next  int // the slot the next new name replaces, round-robin
}

func (sn *servedNames) find(name string) int {
	for i := range sn.names {
		if sn.valid[i] && sn.names[i] == name {
			return i
		}
	}
	return -1
}

func (sn *servedNames) has(name string) bool { return sn.find(name) >= 0 }

func (sn *servedNames) add(name string) {
	if sn.has(name) {
		return
	}
	sn.names[sn.next], sn.valid[sn.next] = name, true
	sn.next = (sn.next + 1) % len(sn.names)
}

func (sn *servedNames) remove(name string) {
	if i := sn.find(name); i >= 0 {
		sn.names[i], sn.valid[i] = "", false
	}
}

// ServiceAccepted reports whether the peer accepted an earlier stream
// channel to st's service on this session and has refused none since: a
// dial may then return without waiting for this channel's ACCEPT, and a
// refusal after all (the service closed meanwhile, its backlog full)
// shows on the first Read or Write.
func (st *Stream) ServiceAccepted() bool {
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	return st.s.served.has(st.service)
}

// WaitAccepted waits until the peer accepted the channel, or returns the
// refusal (a *mux.ChannelError naming the reason) or the session's error.
func (st *Stream) WaitAccepted(ctx context.Context) error {
	return st.WaitAcceptedUntil(ctx, time.Time{})
}

// WaitAcceptedUntil is WaitAccepted with a deadline (zero: none), which
// ends the wait with context.DeadlineExceeded.
func (st *Stream) WaitAcceptedUntil(ctx context.Context, deadline time.Time) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			putTimer(timer)
		}
	}()
	var expired <-chan time.Time
	for {
		if st.isClosed.Load() {
			st.wakeUnlocked(true, false) // pass Close's wake-up on
			return ErrClosed
		}
		st.s.mu.Lock()
		if st.wasAccepted {
			st.s.mu.Unlock()
			return nil
		}
		if st.acceptCh == nil {
			st.acceptCh = make(chan struct{})
		}
		accept := st.acceptCh
		readable := waitCh(&st.readable)
		_, err := st.s.m.Read(st.id, nil)
		st.s.mu.Unlock()
		if refused(err) || errors.Is(err, mux.ErrSessionClosed) {
			return err
		}
		if timer == nil && !deadline.IsZero() {
			timer = getTimer(time.Until(deadline))
			expired = timer.C
		}
		select {
		case <-accept:
			return nil
		case <-readable:
		case <-st.s.doneCh:
		case <-expired:
			return context.DeadlineExceeded
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// refused reports whether err is (or wraps) the peer's refusal of a
// channel; unlike errors.As it needs no heap target.
func refused(err error) bool {
	for err != nil {
		if ce, ok := err.(*mux.ChannelError); ok {
			return ce.Refused
		}
		err = errors.Unwrap(err)
	}
	return false
}

// Read reads stream bytes: it blocks until some arrive, the stream ends
// (a bare io.EOF), the read deadline passes (os.ErrDeadlineExceeded), or
// the stream or session fails.
func (st *Stream) Read(p []byte) (int, error) {
	for {
		if st.isClosed.Load() {
			st.wakeUnlocked(true, false) // pass Close's wake-up on
			return 0, ErrClosed
		}
		if st.rdSet.Load() && st.rd.Passed() {
			return 0, os.ErrDeadlineExceeded
		}
		st.s.mu.Lock()
		n, err := st.s.m.Read(st.id, p)
		due := st.s.m.TakeWake()
		var readable chan struct{}
		if n == 0 && err == nil && len(p) > 0 {
			readable = waitCh(&st.readable) // about to block
		}
		st.s.mu.Unlock()
		if due {
			st.s.kick() // a window update, or an event, is due
		}
		if n > 0 {
			return n, nil
		}
		if err == io.EOF {
			return 0, io.EOF
		}
		if err != nil {
			return 0, st.mapErr(err)
		}
		if len(p) == 0 {
			return 0, nil
		}
		select {
		case <-readable:
		case <-st.rdWait():
			return 0, os.ErrDeadlineExceeded
		case <-st.s.doneCh:
			st.s.mu.Lock()
			n, err = st.s.m.Read(st.id, p)
			st.s.mu.Unlock()
			if n > 0 || err != nil {
				if err != nil && err != io.EOF {
					err = st.mapErr(err)
				}
				return n, err
			}
			return 0, st.s.err
		}
	}
}

// Write queues all of p, blocking while the send buffer is full. On a
// deadline or failure it returns how much was queued.
func (st *Stream) Write(p []byte) (int, error) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	written := 0
	for {
		if err := st.writeCheck(); err != nil {
			return written, err
		}
		st.s.mu.Lock()
		n, err := st.s.m.Write(st.id, p[written:])
		var writable chan struct{}
		if err == nil && written+n < len(p) {
			writable = waitCh(&st.writable) // about to block
		}
		st.s.mu.Unlock()
		written += n
		if n > 0 {
			st.s.runWritten(n)
		}
		if err != nil {
			return written, st.mapErr(err)
		}
		if written == len(p) {
			return written, nil
		}
		if err := st.waitWritable(writable); err != nil {
			return written, err
		}
	}
}

// writeCheck is what a write checks before each try: the stream closed
// (ErrClosed), or the write deadline passed.
func (st *Stream) writeCheck() error {
	if st.isClosed.Load() {
		st.wakeUnlocked(false, true) // pass Close's wake-up on
		return ErrClosed
	}
	if st.wdSet.Load() && st.wd.Passed() {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// waitWritable blocks a write until writable (the stream's wake-up
// channel, made under the session's lock) is posted, the write deadline
// passes, or the session ends.
func (st *Stream) waitWritable(writable chan struct{}) error {
	select {
	case <-writable:
		return nil
	case <-st.wdWait():
		return os.ErrDeadlineExceeded
	case <-st.s.doneCh:
		return st.s.err
	}
}

// mapErr turns engine errors into what a net.Conn user expects.
func (st *Stream) mapErr(err error) error {
	if errors.Is(err, mux.ErrUnknownChannel) || errors.Is(err, mux.ErrChannelClosed) {
		return ErrClosed
	}
	return err
}

// CloseWrite ends the sending direction: the peer reads io.EOF after the
// data already written.
func (st *Stream) CloseWrite() error {
	if st.isClosed.Load() {
		return ErrClosed
	}
	st.s.mu.Lock()
	err := st.s.m.CloseWrite(st.id)
	st.s.mu.Unlock()
	st.s.kick()
	return st.mapErr(err)
}

// Close ends both directions: written data is still delivered, the peer
// is told to stop sending, and every blocked call returns.
func (st *Stream) Close() error {
	if !st.isClosed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	st.wakeUnlocked(true, true) // blocked calls wake, see isClosed and return
	st.s.mu.Lock()
	st.s.m.CloseChannel(st.id, 0)
	st.s.mu.Unlock()
	st.s.kick()
	return nil
}

// SetDeadline, SetReadDeadline and SetWriteDeadline follow net.Conn: a new
// deadline applies to calls already blocked.
// A blocked call is woken to select on the new deadline's channel.
func (st *Stream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	st.SetWriteDeadline(t)
	return nil
}

func (st *Stream) SetReadDeadline(t time.Time) error {
	st.rd.Set(t)
	st.rdSet.Store(true)
	st.wakeUnlocked(true, false)
	return nil
}

func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.wd.Set(t)
	st.wdSet.Store(true)
	st.wakeUnlocked(false, true)
	return nil
}

// inlineRunMax is the most bytes a write may queue and still have the
// session run on the writer's goroutine (runNow).
const inlineRunMax = 16 << 10

// writerTries bounds how many times runWritten yields while a worker runs
// the session. Measured at MTU 1,500 (2026-12-07), on a prototype: 4 tries
// gave bulk +5 % and 8 streams +10 %; 16, +3 % and +8 %; 200, +7 % and
// none, the spinning writer taking the CPU the receiving end needed. As
// committed, with 4: 8 streams +6 %, bulk +1–2 % (PERFORMANCE.md).
const writerTries = 4

// runWritten sends what a Write just copied into the send ring (n bytes).
// A large write runs the session on the writer's goroutine when it can
// take it within writerTries yields: the bytes are still in this core's
// cache, and building and sealing them here halves the cost of copying
// them into packets, which another core pays reading lines this one
// wrote (PERFORMANCE.md). Otherwise a worker sends them, as for small
// writes that find the session busy (runNow). io.Copy through ReadFrom
// keeps runNow: its source is a socket, and reading it while a worker
// sends is worth more (iperf3 through haven forward: −4 to −6 % when
// ReadFrom ran the session too).
func (s *Session) runWritten(n int) {
	if n <= inlineRunMax {
		s.runNow(n)
		return
	}
	s.writersWaiting.Add(1)
	for try := 0; ; try++ {
		if s.state.CompareAndSwap(runIdle, runRunning) {
			break
		}
		if try == writerTries {
			// After the count drops, so that a worker that handed the
			// session over meanwhile is either seen idle here (kick
			// queues it) or takes it back itself (run).
			s.writersWaiting.Add(-1)
			s.kick()
			return
		}
		runtime.Gosched()
	}
	s.writersWaiting.Add(-1)
	s.runTaken()
}

// runNow sends what a call just queued (n bytes of stream data). When no
// worker has the session and n is small, the caller's goroutine runs it
// once, as a TCP write makes its segment in the caller's system call:
// a request leaves without waking a worker, which on a busy machine costs
// more than building the packet (issue #7). Larger writes, and a session
// that is queued or running already, go through kick, so bulk senders keep
// the workers' batching and a run never starts twice.
func (s *Session) runNow(n int) {
	if n > inlineRunMax || !s.state.CompareAndSwap(runIdle, runRunning) {
		s.kick()
		return
	}
	s.runTaken()
}

// runTaken runs the session once on the calling goroutine, which has just
// moved its state from runIdle to runRunning.
func (s *Session) runTaken() {
	if s.ep.runq.enter() {
		s.runOnce()
		s.ep.runq.exit()
	}
	if s.state.CompareAndSwap(runRunning, runIdle) {
		return
	}
	// Kicked while we ran (runAgain): a worker goes round, not the caller.
	s.state.Store(runQueued)
	s.ep.runq.push(s)
}
