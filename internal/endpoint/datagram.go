package endpoint

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// Datagram is one datagram received on a datagram service.
type Datagram struct {
	Data    []byte
	From    *Session
	Channel *DatagramChannel
}

// DatagramService collects the datagrams of every datagram channel opened
// to (or from) this service name, from every peer, into one bounded queue:
// when the reader falls behind, new datagrams are dropped, as UDP drops
// them when a socket buffer is full.
type DatagramService struct {
	ep     *Endpoint
	name   string
	in     chan Datagram
	closed chan struct{}
	once   sync.Once
	// mu guards byPeer: the datagram channel to use for each peer.
	mu     sync.Mutex
	byPeer map[wire.PublicKey]*DatagramChannel
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
	svc := &DatagramService{ep: ep, name: name, in: make(chan Datagram, 1024),
		closed: make(chan struct{}), byPeer: make(map[wire.PublicKey]*DatagramChannel)}
	ep.dgServices[name] = svc
	return svc, nil
}

// Recv returns the next datagram, waiting until one arrives, the deadline
// passes (os.ErrDeadlineExceeded), ctx ends or the service closes.
func (svc *DatagramService) Recv(ctx context.Context, deadline <-chan struct{}) (Datagram, error) {
	select {
	case d := <-svc.in:
		return d, nil
	default:
	}
	select {
	case d := <-svc.in:
		return d, nil
	case <-deadline:
		return Datagram{}, os.ErrDeadlineExceeded
	case <-svc.closed:
		return Datagram{}, ErrClosed
	case <-ctx.Done():
		return Datagram{}, ctx.Err()
	}
}

// Channel returns the datagram channel for peer, if one is open.
func (svc *DatagramService) Channel(peer wire.PublicKey) *DatagramChannel {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	dc := svc.byPeer[peer]
	if dc != nil && dc.isDone() {
		delete(svc.byPeer, peer)
		return nil
	}
	return dc
}

func (svc *DatagramService) adopt(dc *DatagramChannel) {
	svc.mu.Lock()
	if old := svc.byPeer[dc.s.peer]; old == nil || old.isDone() {
		svc.byPeer[dc.s.peer] = dc
	}
	svc.mu.Unlock()
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

// OpenDatagram opens a datagram channel to svc's name on the session; what
// the peer sends back on it arrives at svc.
func (s *Session) OpenDatagram(svc *DatagramService, priority uint8) (*DatagramChannel, error) {
	s.mu.Lock()
	id, err := s.m.OpenDatagram(svc.name, priority)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	dc := &DatagramChannel{s: s, id: id, svc: svc, writable: make(chan struct{}, 1), done: make(chan struct{})}
	s.dgChans[id] = dc
	s.mu.Unlock()
	svc.adopt(dc)
	s.kick()
	return dc, nil
}

// Send queues one datagram (up to 65,507 bytes), waiting while the
// channel's queue is full until deadline passes.
func (dc *DatagramChannel) Send(p []byte, deadline <-chan struct{}) error {
	for {
		dc.s.mu.Lock()
		err := dc.s.m.SendDatagram(dc.id, p)
		dc.s.mu.Unlock()
		if err != mux.ErrQueueFull {
			if err == nil {
				dc.s.kick()
			}
			return err
		}
		select {
		case <-dc.writable:
		case <-deadline:
			return os.ErrDeadlineExceeded
		case <-dc.done:
			return ErrClosed
		case <-dc.s.doneCh:
			return dc.s.err
		}
	}
}

// Session returns the channel's session.
func (dc *DatagramChannel) Session() *Session { return dc.s }

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
	dc := &DatagramChannel{s: s, id: ch, svc: svc, writable: make(chan struct{}, 1), done: make(chan struct{})}
	s.dgChans[ch] = dc
	s.m.Accept(ch)
	svc.adopt(dc)
}

// datagramEvents moves received datagrams to the service queue and wakes
// blocked senders (called with s.mu held).
func (s *Session) datagramEvents(dc *DatagramChannel, k mux.EventKind) {
	if k&mux.EventReadable != 0 {
		for i := 0; i < 4096; i++ {
			if len(s.dgBuf) == 0 {
				s.dgBuf = make([]byte, wire.MaxDatagramSize)
			}
			n, err := s.m.RecvDatagram(dc.id, s.dgBuf)
			if err != nil || n == 0 {
				break
			}
			d := Datagram{Data: append([]byte(nil), s.dgBuf[:n]...), From: s, Channel: dc}
			select {
			case dc.svc.in <- d:
			default: // the reader is behind: drop, as UDP would
			}
		}
	}
	if k&(mux.EventWritable|mux.EventClosed) != 0 {
		wake(dc.writable, true)
	}
	if k&mux.EventClosed != 0 {
		dc.doneOnce.Do(func() { close(dc.done) })
	}
}

// closeDatagrams ends every datagram channel of an ended session.
func (s *Session) closeDatagrams() {
	for _, dc := range s.dgChans {
		dc.doneOnce.Do(func() { close(dc.done) })
	}
}
