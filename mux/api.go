package mux

import (
	"io"
	"time"

	"github.com/havenproto/haven/mux/internal/buf"
	"github.com/havenproto/haven/wire"
)

// ChannelInfo describes a channel.
type ChannelInfo struct {
	ID       uint32
	Type     wire.ChannelType
	Priority uint8
	Service  string
	Local    bool // opened by this side
}

// OpenStream opens a reliable stream channel to service with a priority
// (0 most urgent). Data may be written at once: the OPEN travels in front
// of it, so opening costs no round trip.
func (s *Session) OpenStream(service string, priority uint8) (uint32, error) {
	return s.open(wire.ChannelStream, service, priority)
}

// OpenDatagram opens a datagram channel to service.
func (s *Session) OpenDatagram(service string, priority uint8) (uint32, error) {
	return s.open(wire.ChannelDatagram, service, priority)
}

func (s *Session) open(t wire.ChannelType, service string, prio uint8) (uint32, error) {
	if s.state != sessOpen {
		return 0, s.closeErr
	}
	if s.draining {
		return 0, ErrSessionClosed
	}
	if len(service) > wire.MaxServiceLen {
		return 0, ErrServiceName
	}
	if s.openedByUs >= s.peerCredit || s.openedByUs >= 1<<31-1 {
		return 0, ErrChannelLimit
	}
	s.openedByUs++
	id := 2*s.openedByUs - 1
	if s.role == Responder {
		id++
	}
	c := s.newChannel(id, t, prio, service, true)
	c.state = chOpening
	c.pending |= pendOpen
	s.sched.wake(c)
	return id, nil
}

// newChannel creates and registers a channel with its buffers.
func (s *Session) newChannel(id uint32, t wire.ChannelType, prio uint8, service string, local bool) *channel {
	var c *channel
	if t == wire.ChannelStream {
		sc := new(streamChannel)
		sc.sendBuf.Init(s.cfg.SendBuffer, buf.DefaultMaxRanges)
		sc.recvBuf.Init(s.cfg.ChannelWindow, buf.DefaultMaxRanges)
		c = &sc.channel
		c.send, c.recv = &sc.sendBuf, &sc.recvBuf
		if s.acks.multi {
			c.multipathGaps()
		}
	} else {
		c = new(channel)
	}
	c.id, c.typ, c.prio, c.service, c.local = id, t, prio, service, local
	if t == wire.ChannelStream {
		c.recvLimit = uint64(s.cfg.ChannelWindow)
		c.sendLimit = uint64(s.peerParams.ChannelWindow)
	}
	c.dgOut.limit = s.cfg.DatagramQueue
	c.dgIn.limit = s.cfg.DatagramQueue
	if t == wire.ChannelDatagram {
		// Datagram limits count sequence numbers (PROTOCOL.md §5.10).
		c.sendLimit = wire.InitialDatagramLimit
		c.recvLimit = uint64(max(wire.InitialDatagramLimit, s.dgWindow(c)))
	}
	s.channels.Put(id, c)
	s.stats.ChannelsOpened++
	if s.cfg.Trace != nil {
		s.trace(&TraceEvent{Kind: TraceChannelOpened, Channel: id, Local: local})
	}
	return c
}

// channel looks a channel up for the API.
func (s *Session) channel(id uint32) (*channel, error) {
	if s.state != sessOpen {
		if s.closeErr != nil {
			return nil, s.closeErr
		}
		return nil, ErrSessionClosed
	}
	c := s.channels.Lookup(id)
	if c == nil {
		return nil, ErrUnknownChannel
	}
	return c, nil
}

// Info describes channel id.
func (s *Session) Info(id uint32) (ChannelInfo, bool) {
	c := s.channels.Lookup(id)
	if c == nil {
		return ChannelInfo{}, false
	}
	return ChannelInfo{ID: id, Type: c.typ, Priority: c.prio, Service: c.service, Local: c.local}, true
}

// Accept accepts a channel the peer opened (EventIncoming).
func (s *Session) Accept(id uint32) error {
	c, err := s.channel(id)
	if err != nil {
		return err
	}
	if c.state != chIncoming {
		return ErrChannelClosed
	}
	c.state = chOpen
	c.pending |= pendAccept
	if s.holdAccept(c) {
		return nil
	}
	s.sched.wake(c)
	return nil
}

// holdAccept reports whether c's ACCEPT may wait for the channel's first
// reply, and if so holds it back (scheduler.held). A peer that sent data
// with its OPEN is not waiting for the ACCEPT (PROTOCOL.md §5.7: data may
// follow OPEN at once), and the ACK of that packet is delayed anyway
// (RFC 9000 §13.2.1), so the ACCEPT rides with the reply data and that ACK
// in one packet instead of going alone: an open, a one-packet request and
// its answer cost two packets, not three, and the opener no immediate ACK
// of two packets. The hold ends when the channel has something else to
// send (wake), when the ACK falls due (at most MaxAckDelay) or goes out in
// another packet (Poll): never later than the ACK would have gone. One
// channel at a time is held; the others' ACCEPTs go at once.
func (s *Session) holdAccept(c *channel) bool {
	if s.sched.held != nil || !c.isStream() || c.recvHighest == 0 && !c.finSeen {
		return false
	}
	if !s.acks.unacked || s.acks.due(s.now) {
		return false
	}
	s.sched.held = c
	return true
}

// releaseHeldAccept queues the held ACCEPT once its hold has ended: the
// ACK it was to ride with is due, or went out without it.
func (s *Session) releaseHeldAccept(now time.Time) {
	if c := s.sched.held; c != nil && (!s.acks.unacked || s.acks.due(now)) {
		s.sched.wake(c)
	}
}

// Refuse refuses a channel the peer opened, with a REFUSE reason code and
// text (docs/PROTOCOL.md §5.7).
func (s *Session) Refuse(id uint32, code uint32, reason string) error {
	c, err := s.channel(id)
	if err != nil {
		return err
	}
	if c.state != chIncoming {
		return ErrChannelClosed
	}
	c.state = chDone
	c.ownerClosed = true
	c.closeCode = code
	c.refuseText = reason
	c.pending = pendRefuse
	s.releaseBuffers(c)
	s.sched.wake(c)
	return nil
}

// Write queues p on stream channel id and returns how much was queued: all
// of p, or as much as the send buffer had room for, and no more than the
// channel's share of unsent bytes while other channels are queued to send
// (unsentCap); EventWritable tells when more fits.
func (s *Session) Write(id uint32, p []byte) (int, error) {
	c, err := s.writable(id)
	if err != nil {
		return 0, err
	}
	n := c.send.Write(p[:s.unsentClamp(c, len(p))])
	if n > 0 {
		s.sched.wake(c)
	}
	return n, nil
}

// ReserveWrite opens a reservation of up to max bytes in the send buffer
// of stream channel id: the bytes that follow what was written, as one
// slice (empty when the buffer is full, or the channel has its share of
// unsent bytes as Write counts it: EventWritable tells when room frees).
// The caller may fill it without the session's lock (io.ReaderFrom
// reads into it straight) and must then call CommitWrite, which queues
// the bytes it filled; until then Write queues nothing on the channel.
// The slice belongs to the caller until CommitWrite, whatever happens to
// the channel meanwhile (buf.SendBuffer.Reserve).
func (s *Session) ReserveWrite(id uint32, max int) ([]byte, error) {
	c, err := s.writable(id)
	if err != nil {
		return nil, err
	}
	return c.send.Reserve(s.unsentClamp(c, max)), nil
}

// CommitWrite queues the first n bytes of the reservation ReserveWrite
// returned and returns how many were queued: n, or 0 with the error Write
// would return when the channel's sending side ended meanwhile (the bytes
// are dropped then, as a TCP write after shutdown would be).
func (s *Session) CommitWrite(id uint32, n int) (int, error) {
	c, err := s.writable(id)
	if err != nil {
		if c := s.channels.Lookup(id); c != nil && c.isStream() {
			c.send.Commit(0) // close the reservation, dropping its bytes
		}
		return 0, err
	}
	n = c.send.Commit(n)
	if n > 0 {
		s.sched.wake(c)
	}
	return n, nil
}

// writable returns stream channel id if its sending side is open, or the
// error a Write gets.
func (s *Session) writable(id uint32) (*channel, error) {
	c, err := s.channel(id)
	if err != nil {
		return nil, err
	}
	if !c.isStream() {
		return nil, ErrWrongType
	}
	if c.peerErr != nil && c.peerErr.Refused {
		return nil, c.peerErr
	}
	if c.writeDone || c.resetSent || c.peerStopped || c.state == chDone {
		if c.peerStopped && c.peerErr != nil {
			return nil, c.peerErr
		}
		return nil, ErrWriteClosed
	}
	return c, nil
}

// Read reads stream bytes of channel id. At the clean end of the stream it
// returns 0, io.EOF; after a reset or refusal, a *ChannelError. 0, nil
// means nothing is readable yet (wait for EventReadable).
func (s *Session) Read(id uint32, p []byte) (int, error) {
	c := s.channels.Lookup(id)
	if c == nil {
		if s.state != sessOpen && s.closeErr != nil {
			return 0, s.closeErr
		}
		return 0, ErrUnknownChannel
	}
	if !c.isStream() {
		return 0, ErrWrongType
	}
	if c.peerErr != nil && (c.peerErr.Refused || c.peerErr.Reset) {
		return 0, c.peerErr
	}
	if c.readDone {
		return 0, ErrChannelClosed
	}
	n, err := c.recv.Read(p)
	if n > 0 {
		s.consumed(c, n)
	}
	if err == io.EOF {
		s.maybeRelease(c)
		return n, io.EOF
	}
	if n == 0 && s.state != sessOpen {
		return 0, s.closeErr
	}
	return n, nil
}

// consumed credits flow control after the owner read n bytes of c.
func (s *Session) consumed(c *channel, n int) {
	s.readTotal += uint64(n)
	if _, ok := c.recv.ShouldUpdateWindow(); ok {
		s.autoTuneChannel(c)
		c.recvLimit = c.recv.AnnounceLimit()
		c.pending |= pendMaxData
		s.sched.wake(c)
	}
	s.autoTuneSession()
}

// CloseWrite ends the sending direction of stream channel id (FIN after
// the data already written).
func (s *Session) CloseWrite(id uint32) error {
	c, err := s.channel(id)
	if err != nil {
		return err
	}
	if !c.isStream() {
		return ErrWrongType
	}
	if !c.writeDone && !c.resetSent {
		c.writeDone = true
		c.send.Close()
		s.sched.wake(c)
	}
	return nil
}

// CloseChannel ends both directions of channel id: written data is still
// delivered (then FIN), and the peer is told to stop sending (CLOSE with
// code). A datagram channel simply ends.
func (s *Session) CloseChannel(id uint32, code uint32) error {
	c, err := s.channel(id)
	if err != nil {
		return err
	}
	if c.state == chIncoming {
		return s.Refuse(id, wire.RefuseApplication, "closed")
	}
	c.ownerClosed = true
	if c.state == chDone && c.peerErr != nil && c.peerErr.Refused {
		s.maybeRelease(c)
		return nil
	}
	if !c.isStream() {
		c.state = chDone
		c.closeCode = code
		c.pending |= pendClose
		c.dgOut.free()
		s.dgWaiting -= c.dgIn.used
		c.dgIn.free()
		s.sched.wake(c)
		return nil
	}
	if !c.readDone {
		c.readDone = true
		c.closeCode = code
		if c.recv != nil && !c.recv.Done() {
			c.pending |= pendClose
		}
		s.stopReading(c)
	}
	if !c.writeDone && !c.resetSent {
		c.writeDone = true
		c.send.Close()
	}
	s.sched.wake(c)
	s.maybeRelease(c)
	return nil
}

// ResetChannel abandons the sending direction of stream channel id with
// code: unsent and unacknowledged data is dropped.
func (s *Session) ResetChannel(id uint32, code uint32) error {
	c, err := s.channel(id)
	if err != nil {
		return err
	}
	if !c.isStream() {
		return ErrWrongType
	}
	if !c.resetSent && !(c.send.AllAcked() && c.writeDone) {
		c.resetSent, c.resetCode, c.writeDone = true, code, true
		c.send.Reset()
		c.pending |= pendReset
		s.sched.wake(c)
	}
	return nil
}

// SendDatagram queues one datagram on datagram channel id. It fails with
// ErrQueueFull when the channel's queue has no room (the caller may wait
// for EventWritable) and ErrDatagramSize above 65,507 bytes.
func (s *Session) SendDatagram(id uint32, p []byte) error {
	c, err := s.channel(id)
	if err != nil {
		return err
	}
	if c.isStream() {
		return ErrWrongType
	}
	if len(p) > wire.MaxDatagramSize {
		return ErrDatagramSize
	}
	if c.state == chDone {
		if c.peerErr != nil {
			return c.peerErr
		}
		return ErrChannelClosed
	}
	if !c.dgOut.push(p) {
		return ErrQueueFull // the caller waits or drops; not counted here
	}
	s.sched.wake(c)
	return nil
}

// DatagramCreditBlocked reports whether datagram channel id's send queue
// waits for the peer's credit: the peer's application holds a full window
// of datagrams unread (PROTOCOL.md §5.10). An owner with UDP semantics
// drops what it cannot queue then (DatagramUnsent) instead of waiting for
// the remote reader; a queue that is full for any other reason (the
// congestion window, pacing) drains at the network's pace.
func (s *Session) DatagramCreditBlocked(id uint32) bool {
	c := s.channels.Lookup(id)
	return c != nil && !c.isStream() && c.dgOut.len() > 0 && !c.dgCanSend()
}

// ChannelErr returns the peer's refusal, reset or close of channel id, if
// it sent one and the channel is still known.
func (s *Session) ChannelErr(id uint32) error {
	if c := s.channels.Lookup(id); c != nil && c.peerErr != nil {
		return c.peerErr
	}
	return nil
}

// DatagramBacklog reports whether received datagrams waiting for the owner
// (NextDatagramLen, TakeDatagram) fill half a channel's queue or more: an
// owner applying a long batch of packets should take them before the
// queue overflows and drops what arrives next.
func (s *Session) DatagramBacklog() bool { return 2*s.dgWaiting >= s.cfg.DatagramQueue }

// DatagramUnsent counts one datagram the owner dropped instead of queueing
// it (Stats.DatagramsUnsent).
func (s *Session) DatagramUnsent() { s.stats.DatagramsUnsent++ }

// RecvDatagram copies the next received datagram of channel id into p and
// returns its length; 0, nil when none is waiting. A datagram longer than p
// is truncated and reported with its full length n > len(p). The
// datagram's credit goes back to the peer at once (PROTOCOL.md §5.10).
func (s *Session) RecvDatagram(id uint32, p []byte) (int, error) {
	waiting := s.NextDatagramLen(id) >= 0
	n, err := s.TakeDatagram(id, p)
	if waiting {
		s.ReleaseDatagrams(id, 1)
	}
	return n, err
}

// NextDatagramLen returns the length of the next received datagram of
// channel id, or -1 when none is waiting (or id is no datagram channel).
func (s *Session) NextDatagramLen(id uint32) int {
	c := s.channels.Lookup(id)
	if c == nil || c.isStream() || c.dgIn.len() == 0 {
		return -1
	}
	return c.dgIn.headLen()
}

// TakeDatagram is RecvDatagram for an owner that keeps datagrams in a
// queue of its own: the datagram still counts against the peer's limit
// until the owner calls ReleaseDatagrams, so the peer cannot overrun that
// queue either.
func (s *Session) TakeDatagram(id uint32, p []byte) (int, error) {
	c := s.channels.Lookup(id)
	if c == nil {
		if s.state != sessOpen && s.closeErr != nil {
			return 0, s.closeErr
		}
		return 0, ErrUnknownChannel
	}
	if c.isStream() {
		return 0, ErrWrongType
	}
	if c.dgIn.len() == 0 {
		if c.peerErr != nil {
			return 0, c.peerErr
		}
		if c.state == chDone {
			return 0, ErrChannelClosed
		}
		if s.state != sessOpen {
			return 0, s.closeErr
		}
		return 0, nil
	}
	n := c.dgIn.headLen()
	c.dgIn.copyHead(p[:min(n, len(p))], 0)
	c.dgIn.pop()
	s.dgWaiting -= n
	return n, nil
}

// ReleaseDatagrams returns the credit of n datagrams taken with
// TakeDatagram that the owner has consumed. It reports whether a MAX_DATA
// is now queued, so the owner knows to run Poll soon.
func (s *Session) ReleaseDatagrams(id uint32, n int) bool {
	c := s.channels.Lookup(id)
	if c == nil || c.isStream() || n <= 0 {
		return false
	}
	c.dgHeld = max(c.dgHeld-n, 0)
	return s.dgRegrant(c)
}

// stopReading discards what c has buffered unread and counts it, and
// everything that still arrives, as consumed for session flow control.
func (s *Session) stopReading(c *channel) {
	if c.recv == nil {
		return
	}
	s.readTotal += c.recvHighest - min(c.recv.ReadOffset(), c.recvHighest)
	c.recv.Close()
	s.autoTuneSession()
}

// releaseBuffers drops a channel's stream buffers.
func (s *Session) releaseBuffers(c *channel) {
	if c.recv != nil {
		s.stopReading(c)
	}
	c.dgOut.free()
	s.dgWaiting -= c.dgIn.used
	c.dgIn.free()
}

// maybeRelease forgets a finished channel, returning MAX_CHANNELS credit
// for peer-opened ones.
func (s *Session) maybeRelease(c *channel) {
	if !c.finished() || s.channels.Lookup(c.id) == nil {
		return
	}
	s.sched.remove(c)
	s.channels.Remove(c.id)
	if s.cfg.Trace != nil {
		s.trace(&TraceEvent{Kind: TraceChannelClosed, Channel: c.id})
	}
	k := c.events | EventClosed
	if c.events == 0 {
		s.events.push(c.id)
	}
	s.gone.Put(c.id, k)
	c.events = 0
	if c.send != nil {
		c.send.Release()
	}
	if c.recv != nil {
		c.recv.Close()
	}
	if c.reasm != nil {
		c.reasm.Release()
	}
	defer s.checkDrained()
	if !c.local {
		s.peerLive--
		s.peerReleased++
		// The peer may have MaxChannels open at once: its cumulative credit
		// is what it has finished plus that. Announce it in batches of an
		// eighth of the limit, so closing channels costs few packets.
		s.creditSent = s.peerReleased + uint32(s.cfg.MaxChannels)
		if s.creditSent-s.creditAnnounced >= uint32(max(1, s.cfg.MaxChannels/8)) {
			s.ctrlMaxChans = true
			s.sched.wakeControl()
		}
	}
}
