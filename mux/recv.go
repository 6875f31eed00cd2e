package mux

import (
	"errors"
	"time"

	"github.com/havenproto/haven/mux/internal/buf"
	"github.com/havenproto/haven/wire"
)

// errDropPacket aborts a packet without acknowledging it, so the peer sends
// its content again: used when a channel's OPEN has not arrived yet or a
// receive buffer cannot hold another gap.
var errDropPacket = errors.New("mux: packet dropped unacknowledged")

// Receive processes one authenticated, decrypted packet: header and
// messages, tag removed (the layer above opened it). pkt is only read
// during the call. A peer that breaks the protocol closes the session with
// a CLOSE carrying the code; Receive then returns that error.
func (s *Session) Receive(pkt []byte, now time.Time) error {
	return s.ReceivePath(pkt, 0, now)
}

// ReceivePath is Receive for a session with several paths (AddPath): the
// packet arrived on path id. Packets that carry only ACKs or PINGs go
// back on the path the latest packet came by (PROTOCOL.md §6.6.3): it
// worked a moment ago, whatever this side's own packets on it meet.
func (s *Session) ReceivePath(pkt []byte, id int, now time.Time) error {
	return s.ReceiveLent(pkt, id, now, nil)
}

// BufferRef is a reference on a received packet's buffer that the engine
// holds (BufferHolder); Release gives it back. The engine releases each
// reference exactly once, from the goroutine that runs the session at the
// time (a Read, the channel's close, the peer's RESET).
type BufferRef = interface{ Release() }

// BufferHolder lends the engine the buffer of the packet given to
// ReceiveLent. Hold returns a reference on it, or nil to decline (the
// engine then copies, as ReceivePath does).
type BufferHolder interface{ Hold() BufferRef }

// ReceiveLent is ReceivePath for a packet whose buffer lender may lend:
// stream data that continues a channel's readable bytes in order, in
// pieces of at least a kilobyte, may stay in pkt's buffer under a
// reference from lender.Hold until the owner reads it, instead of being
// copied (mux/internal/buf/lent.go). The bytes of pkt must then not change
// while a reference is held. With lender nil, pkt is only read during the
// call.
func (s *Session) ReceiveLent(pkt []byte, id int, now time.Time, lender BufferHolder) error {
	if id >= 0 && id < s.numPaths() && s.path(id).live {
		s.rxPath = uint8(id)
	}
	s.now = now
	if s.state == sessClosed || s.state == sessDraining {
		return nil
	}
	var h wire.Header
	if err := h.Parse(pkt); err != nil || h.IsHandshake() {
		return nil // not ours to judge: the layer above filters these
	}
	pn := h.PacketNumber
	if s.acks.seen(pn) || s.acks.tooOld(pn) {
		return nil // duplicate
	}
	s.stats.PacketsReceived++
	s.stats.BytesReceived += uint64(len(pkt) + wire.TagLen)
	if s.cfg.Trace != nil {
		s.trace(&TraceEvent{Kind: TracePacketReceived, PN: pn, Size: len(pkt) + wire.TagLen, Path: id, Channel: h.Channel})
	}
	s.lastRecv = now
	if s.state == sessClosing {
		s.closeSent = false // answer with our CLOSE again
		return nil
	}
	eliciting, err := s.applyMessages(&h, pkt, now, lender)
	if err == errDropPacket {
		return nil
	}
	if err != nil {
		var pe *protocolError
		if errors.As(err, &pe) {
			s.Close(pe.code, pe.reason)
			return err
		}
		return err
	}
	if !s.acks.any || pn > s.acks.largest {
		s.spin = h.Flags&wire.FlagSpin != 0
	}
	s.setAckDelay()
	s.acks.record(pn, eliciting, now)
	if s.rxData {
		s.acks.data = true
	}
	return nil
}

// applyMessages walks and applies the messages of a packet. It returns
// whether the packet was ack-eliciting.
func (s *Session) applyMessages(h *wire.Header, pkt []byte, now time.Time, lender buf.Holder) (bool, error) {
	var r wire.MessageReader
	r.Reset(pkt, s.align)
	eliciting := false
	s.rxData = false
	var c *channel
	known := h.Channel == 0 // whether the channel's state has been looked up
	ignore := false         // the channel is closed and forgotten
	for r.Next() {
		mh := r.Header()
		if !mh.ID.AllowedIn(h.Channel, false) {
			return false, violation("message " + mh.ID.String() + " not allowed on this channel")
		}
		if mh.ID != wire.MsgAck && mh.ID != wire.MsgPadding {
			eliciting = true
			s.rxData = s.rxData || mh.ID != wire.MsgPing
		}
		switch mh.ID {
		case wire.MsgAck:
			a := &s.store.ackIn
			if err := a.Parse(r.Message()); err != nil {
				return false, violation("malformed ACK")
			}
			err := s.onAck(a, now)
			if cap(a.Ranges) > maxAckInCap {
				a.Ranges = s.store.ackInRanges[:0] // do not keep a huge ACK's room
			}
			if err != nil {
				return false, err
			}
			continue
		case wire.MsgPing:
			continue
		}
		if mh.ID.Ignorable() && !mh.ID.Known() {
			continue
		}
		if h.Channel == 0 {
			if err := s.applySession(r.Message(), mh.ID, now); err != nil {
				return false, err
			}
			continue
		}
		if !known {
			known = true
			var err error
			c, ignore, err = s.lookupChannel(h.Channel, r.Message(), mh.ID)
			if err != nil {
				return false, err
			}
		}
		if ignore {
			continue
		}
		if err := s.applyChannel(c, r.Message(), mh.ID, now, lender); err != nil {
			return false, err
		}
	}
	if r.Err() != nil {
		return false, violation("malformed packet: " + r.Err().Error())
	}
	return eliciting, nil
}

// peerParity reports whether channel id is one the peer opens.
func (s *Session) peerParity(id uint32) bool { return (id%2 == 1) == (s.role == Responder) }

// lookupChannel finds the channel of a packet at its first channel-scoped
// message, creating it when that message is the peer's OPEN.
func (s *Session) lookupChannel(id uint32, msg []byte, first wire.MsgID) (c *channel, ignore bool, err error) {
	if c = s.channels.Lookup(id); c != nil {
		return c, false, nil
	}
	seq := (id + 1) / 2
	if !s.peerParity(id) {
		if seq > s.openedByUs {
			return nil, false, violation("message for a channel this side never opened")
		}
		return nil, true, nil // one of ours, finished and forgotten
	}
	if s.peerSeen.Contains(uint64(seq)) {
		return nil, true, nil // the peer's, finished and forgotten
	}
	if first != wire.MsgOpen {
		return nil, false, errDropPacket // its OPEN is still on the way
	}
	var o wire.Open
	if err := o.Parse(msg); err != nil {
		return nil, false, violation("malformed OPEN")
	}
	if seq > s.creditSent {
		return nil, false, &protocolError{code: wire.CloseChannelLimit, reason: "channel opened beyond MAX_CHANNELS"}
	}
	if !s.peerSeen.Add(uint64(seq), uint64(seq)+1) {
		return nil, false, errDropPacket // too many gaps in the peer's ids: wait for the oldest
	}
	c = s.newChannel(id, o.Type, o.Priority, string(o.Service), false)
	c.state = chIncoming
	s.peerLive++
	c.sendLimit = max(c.sendLimit, uint64(o.Window)) // bytes, or datagrams (§5.10)
	if s.draining {
		c.state, c.ownerClosed = chDone, true
		c.closeCode, c.refuseText = wire.RefuseShutdown, "session draining"
		c.pending = pendRefuse
		s.releaseBuffers(c)
		s.sched.wake(c)
		return c, true, nil
	}
	s.emit(c, EventIncoming)
	return c, false, nil
}

// applySession applies a channel-0 message.
func (s *Session) applySession(msg []byte, id wire.MsgID, now time.Time) error {
	m := &s.store.in
	switch id {
	case wire.MsgClose:
		if err := m.close.Parse(msg); err != nil {
			return violation("malformed CLOSE")
		}
		s.terminate(sessDraining, CloseError{Code: m.close.Code, Reason: string(m.close.Reason), Remote: true})
		s.closeUntil = now.Add(3 * s.rec.rtt.PTO(s.cfg.MaxAckDelay))
	case wire.MsgMaxData:
		if err := m.maxData.Parse(msg); err != nil {
			return violation("malformed MAX_DATA")
		}
		if m.maxData.Max > s.sendLimit {
			s.sendLimit = m.maxData.Max
			s.wakeAllStreams()
		}
	case wire.MsgBlocked:
		if err := m.blocked.Parse(msg); err != nil {
			return violation("malformed BLOCKED")
		}
		s.autoTuneSession()
	case wire.MsgMaxChannels:
		if err := m.maxChans.Parse(msg); err != nil {
			return violation("malformed MAX_CHANNELS")
		}
		s.peerCredit = max(s.peerCredit, m.maxChans.Max)
	case wire.MsgPathChallenge:
		if err := m.challenge.Parse(msg); err != nil {
			return violation("malformed PATH_CHALLENGE")
		}
		s.pathResponse, s.ctrlResponse, s.challenged = m.challenge.Data, true, true
		s.sched.wakeControl()
	case wire.MsgPathResponse:
		if err := m.response.Parse(msg); err != nil {
			return violation("malformed PATH_RESPONSE")
		}
		s.pathResult = m.response.Data
		s.emit(nil, EventPathResponse)
	case wire.MsgAddress:
		// The multi-path sub-protocol's advertisements (PROTOCOL.md
		// §6.6.2, addresses.go).
		var adv wire.AdvertiseAddress
		if adv.Parse(msg) != nil {
			return violation("malformed ADDRESS")
		}
		s.peerAdvertised(adv)
	case wire.MsgAddressRetire:
		var ret wire.RetireAddress
		if ret.Parse(msg) != nil {
			return violation("malformed ADDRESS_RETIRE")
		}
		s.peerRetired(ret.Seq)
	default:
		return violation("unexpected " + id.String() + " on channel 0")
	}
	return nil
}

// applyChannel applies a message scoped to channel c.
func (s *Session) applyChannel(c *channel, msg []byte, id wire.MsgID, now time.Time, lender buf.Holder) error {
	m := &s.store.in
	switch id {
	case wire.MsgOpen:
		if err := m.open.Parse(msg); err != nil || m.open.Type != c.typ {
			return violation("OPEN contradicts the channel")
		}
		return nil // a repeat
	case wire.MsgAccept:
		if err := m.accept.Parse(msg); err != nil || !c.local {
			return violation("bad ACCEPT")
		}
		if c.state == chOpening {
			c.state = chOpen
			c.sendLimit = max(c.sendLimit, uint64(m.accept.Window))
			s.emit(c, EventAccepted|EventWritable)
			s.sched.wake(c)
		}
	case wire.MsgRefuse:
		if err := m.refuse.Parse(msg); err != nil || !c.local {
			return violation("bad REFUSE")
		}
		if c.state == chOpening {
			c.setPeerErr(ChannelError{Channel: c.id, Refused: true, Code: m.refuse.Code, Reason: string(m.refuse.Reason)})
			c.state = chDone
			c.pending = 0
			if c.send != nil {
				c.send.Reset()
			}
			s.releaseBuffers(c)
			s.emit(c, EventReadable|EventWritable)
			s.maybeRelease(c)
		}
	case wire.MsgClose:
		if err := m.close.Parse(msg); err != nil {
			return violation("malformed CLOSE")
		}
		return s.peerClosedChannel(c, m.close.Code)
	case wire.MsgReset:
		if err := m.reset.Parse(msg); err != nil || !c.isStream() {
			return violation("bad RESET")
		}
		return s.peerReset(c, m.reset.Code, m.reset.FinalSize)
	case wire.MsgMaxData:
		if err := m.maxData.Parse(msg); err != nil {
			return violation("bad MAX_DATA")
		}
		// On a datagram channel the limit counts datagrams (§5.10).
		if m.maxData.Max > c.sendLimit {
			c.sendLimit = m.maxData.Max
			s.sched.wake(c)
		}
	case wire.MsgBlocked:
		if err := m.blocked.Parse(msg); err != nil {
			return violation("bad BLOCKED")
		}
		if !c.isStream() {
			return s.onDatagramBlocked(c, m.blocked.Limit)
		}
		s.autoTuneChannel(c)
	case wire.MsgStream:
		if err := m.stream.Parse(msg); err != nil || !c.isStream() {
			return violation("bad STREAM")
		}
		return s.onStream(c, &m.stream, lender)
	case wire.MsgDatagram:
		if err := m.dgram.Parse(msg); err != nil || c.isStream() {
			return violation("bad DATAGRAM")
		}
		return s.onDatagram(c, &m.dgram, now)
	case wire.MsgDatagramRepair:
		var rep wire.DatagramRepair // rare: not in the scratch, which every session carries
		if err := rep.Parse(msg); err != nil {
			return violation("bad DATAGRAM_REPAIR")
		}
		return s.onRepair(c, &rep)
	default:
		return violation("unexpected " + id.String())
	}
	return nil
}

// onStream stores stream data and accounts for it in flow control.
func (s *Session) onStream(c *channel, m *wire.Stream, lender buf.Holder) error {
	off := wire.FullStreamOffset(c.recv.Contiguous(), m.Offset)
	end := off + uint64(len(m.Data))
	if end > c.recvLimit {
		return &protocolError{code: wire.CloseFlowControl, reason: "stream data beyond the channel limit"}
	}
	if end > c.recvHighest {
		grew := end - c.recvHighest
		s.recvTotal += grew
		c.recvHighest = end
		if s.recvTotal > s.recvLimit {
			return &protocolError{code: wire.CloseFlowControl, reason: "stream data beyond the session limit"}
		}
		if c.readDone {
			s.readTotal += grew // discarded on arrival
			s.autoTuneSession()
		}
	}
	if m.Fin {
		c.finSeen = true
	}
	if c.readDone {
		return nil // we stopped reading: discard (flow control counted above)
	}
	err := c.recv.InsertLent(off, m.Data, m.Fin, lender)
	switch {
	case err == nil:
	case errors.Is(err, buf.ErrTooFragmented):
		return errDropPacket
	case errors.Is(err, buf.ErrFlowControl):
		return &protocolError{code: wire.CloseFlowControl, reason: err.Error()}
	default:
		return violation(err.Error())
	}
	if c.recv.Readable() > 0 || c.eofReady() {
		s.emit(c, EventReadable)
	}
	return nil
}

// peerReset applies a RESET: the peer abandoned its sending side.
func (s *Session) peerReset(c *channel, code uint32, final uint64) error {
	if final < c.recvHighest || final > c.recvLimit {
		return &protocolError{code: wire.CloseFlowControl, reason: "RESET final size below data received or beyond the limit"}
	}
	if final > c.recvHighest {
		s.recvTotal += final - c.recvHighest
		c.recvHighest = final
	}
	if c.peerErr == nil {
		c.setPeerErr(ChannelError{Channel: c.id, Reset: true, Code: code})
		s.stopReading(c)
		s.emit(c, EventReadable)
	}
	s.maybeRelease(c)
	return nil
}

// peerClosedChannel applies a CLOSE on a channel: the peer reads no more.
func (s *Session) peerClosedChannel(c *channel, code uint32) error {
	if !c.isStream() {
		c.state = chDone
		c.setPeerErr(ChannelError{Channel: c.id, Code: code})
		s.releaseBuffers(c)
		s.emit(c, EventReadable|EventWritable)
		s.maybeRelease(c)
		return nil
	}
	if c.peerStopped {
		return nil
	}
	c.peerStopped = true
	if c.peerErr == nil {
		c.setPeerErr(ChannelError{Channel: c.id, Code: code})
	}
	if !c.resetSent && !c.send.AllAcked() {
		c.resetSent, c.resetCode, c.writeDone = true, code, true
		c.send.Reset()
		c.pending |= pendReset
		s.sched.wake(c)
	}
	s.emit(c, EventWritable)
	s.maybeRelease(c)
	return nil
}

// onDatagram delivers a datagram or a fragment of one. A datagram beyond
// the limit we granted closes the session with FLOW_CONTROL_ERROR (§5.10).
func (s *Session) onDatagram(c *channel, m *wire.Datagram, now time.Time) error {
	if c.state == chDone {
		return nil
	}
	seq := wire.FullDatagramSeq(c.dgNext, m.Seq)
	if seq >= c.recvLimit {
		return &protocolError{code: wire.CloseFlowControl, reason: "datagram beyond the channel's datagram limit"}
	}
	if seq >= c.dgNext {
		c.dgNext = seq + 1 // the sequence numbers skipped were lost (or are late)
	}
	data := m.Data
	if m.Fragmented {
		if c.reasm == nil {
			c.reasm = buf.NewReassembler(s.cfg.DatagramReassembly, 64, s.cfg.DatagramTimeout)
		}
		c.reasm.Expire(now)
		d, ok, err := c.reasm.Add(m.Seq, m.Total, m.FragOffset, m.Data, now)
		if err != nil || !ok {
			s.dgRegrant(c)
			return nil
		}
		data = d
	} else if s.fec && !s.fecReceived(c, seq, data) {
		return nil // recovered already (PROTOCOL.md §5.11)
	}
	s.deliverDatagram(c, data)
	if s.fec && !m.Fragmented {
		s.fecTryFor(c, seq)
	}
	return nil
}

// deliverDatagram queues a whole datagram received (or recovered) on c for
// the owner, and accounts for it.
func (s *Session) deliverDatagram(c *channel, data []byte) {
	if !c.dgIn.push(data) {
		s.stats.DatagramsDropped++
		s.dgRegrant(c)
		return
	}
	c.dgHeld++
	s.dgWaiting += len(data)
	if c.dgAvgLen == 0 {
		c.dgAvgLen = len(data)
	} else {
		c.dgAvgLen += (len(data) - c.dgAvgLen) / 8 // EWMA, gain 1/8
	}
	s.stats.DatagramsReceived++
	s.emit(c, EventReadable)
	s.dgRegrant(c)
}

// wakeAllStreams requeues every stream channel with data waiting, after
// the session's flow-control limit grew.
func (s *Session) wakeAllStreams() {
	for c := range s.channels.All() {
		if c.isStream() && c.send != nil && c.send.Unsent() > 0 {
			s.sched.wake(c)
		}
	}
}
