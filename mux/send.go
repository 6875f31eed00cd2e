package mux

import (
	"time"

	"github.com/havenproto/haven/wire"
)

// Poll writes the next packet to send into b and returns its length, or 0
// when there is nothing to send now (see Deadline). The packet is header
// and messages, unsealed: the caller seals it, appending wire.TagLen bytes,
// so b must have room for MaxPacketSize bytes. b is the caller's; Poll
// keeps nothing of it. Poll is PollPath for an owner with one path.
func (s *Session) Poll(b []byte, now time.Time) int {
	n, _ := s.PollPath(b, now)
	return n
}

// PollPath is Poll for a session with several paths (AddPath): it also
// returns the path the packet goes on (paths.go).
func (s *Session) PollPath(b []byte, now time.Time) (int, int) {
	s.now = now
	s.sched.woke = false // Poll takes up whatever was woken (TakeWake)
	s.onTimers(now)
	switch s.state {
	case sessClosed, sessDraining:
		return 0, 0
	case sessClosing:
		return s.buildClose(b, now)
	}
	if len(b) < s.mtu {
		return 0, 0
	}
	if k, ps := s.probeDue(); ps > 0 && len(b) >= ps {
		return s.buildPMTUProbe(b, now, k), k
	}
	k, canSend := s.pickPath(now)
	pathKeep := 0
	if len(s.extra) > 0 {
		pathKeep = s.pathKeepAliveDue(now)
	}
	if pathKeep > 0 {
		k, canSend = pathKeep, false // a PING (and any ACK) on a quiet path
	}
	r := s.path(k)
	room := s.sendSizeOn(k) - wire.TagLen
	probe := r.probes > 0
	if r.suspect {
		canSend = false // its probes are PINGs (PROTOCOL.md §6.6.5)
	}
	ctrl := canSend && s.controlPending()
	s.releaseHeldAccept(now)
	retx := s.stats.StreamBytesRetransmitted
	var c *channel
	if canSend && !ctrl {
		c = s.sched.pick(s)
	}
	ackNow := s.acks.unacked && s.acks.due(now)
	// A due keepalive matters only to a packet that would not be sent, or
	// would carry nothing ack-eliciting, without it: it is checked then
	// (below), not for every packet of a transfer.
	keepalive := s.pingNow || pathKeep > 0
	if !ctrl && c == nil && !ackNow && !probe && !keepalive {
		if !s.keepAliveDue(now) {
			return 0, 0
		}
		keepalive = true
	}
	if !ctrl && c == nil && !probe && pathKeep == 0 && k != s.ackPath() {
		k = s.ackPath() // an ACK or a keepalive: back the way packets come
		r = s.path(k)
	}

	// Field by field: a literal was built beside h and copied into it 16
	// bytes at a time from narrower stores, stalling store-to-load
	// forwarding once per packet.
	var h wire.Header
	h.Destination, h.Source, h.PacketNumber = s.peer, s.local, s.nextPN
	if c != nil {
		h.Channel = c.id
	}
	if s.spinOut() {
		h.Flags |= wire.FlagSpin
	}
	p := h.Append(b[:0])
	sp := s.sent.add()
	ackedData := false
	if s.acks.unacked {
		ackedData = s.acks.data
		// As many ranges as fit in half the packet (8 bytes each).
		a := s.acks.build(now, max(1, (room/2-wire.HeaderLen-24)/8))
		p = wire.AppendAlign(p, s.align)
		p = a.Append(p)
		s.acks.sent()
	}
	eliciting := false
	switch {
	case ctrl:
		p, eliciting = s.appendControl(p, room, sp)
	case c != nil:
		p, eliciting = s.appendChannel(c, p, room, sp)
		s.sched.rotate(c)
	}
	if !eliciting && (probe || keepalive || s.keepAliveDue(now) || ackedData && s.pingWithAck(now)) {
		p = (&wire.Ping{}).Append(wire.AppendAlign(p, s.align))
		eliciting = true
		s.lastPing = now
	}
	if eliciting {
		s.pingNow = false
		s.lastElicit = now
	}
	s.finishPacket(sp, k, len(p), eliciting, now, h.Channel, int(s.stats.StreamBytesRetransmitted-retx))
	return len(p), k
}

// finishPacket records a packet of n bytes (tag excluded) built for path
// k on channel ch, which resent retx stream bytes, and traces it.
func (s *Session) finishPacket(sp *sentPacket, k, n int, eliciting bool, now time.Time, ch uint32, retx int) {
	r := s.path(k)
	size := n + wire.TagLen
	sp.time, sp.size, sp.eliciting, sp.inFlight = now, size, eliciting, eliciting
	sp.path, sp.seq = uint8(k), r.nextSeq
	r.nextSeq++
	if eliciting {
		r.inFlight += size
		r.eliciting++
		r.lastEliciting = now
		r.cc.OnPacketSent(now, size, r.inFlight)
		r.pacer.OnSend(now, size)
		if r.probes > 0 {
			r.probes--
		}
	}
	r.sentPackets++
	r.sentBytes += uint64(size)
	if k > 0 {
		s.extra[k-1].lastSent = now
	}
	if s.cfg.Trace != nil {
		s.trace(&TraceEvent{Kind: TracePacketSent, PN: s.nextPN, Size: size, Path: k, Channel: ch,
			Eliciting: eliciting, Retransmitted: retx})
	}
	s.lastSent = now
	s.nextPN++
	s.stats.PacketsSent++
	s.stats.BytesSent += uint64(size)
}

// pingWithAck reports whether an ACK-only packet should carry a PING too
// (RFC 9000 §13.2.4): when nothing ack-eliciting of ours is outstanding
// and none left for a round trip. A side that only receives then still
// has packets to time out, so it notices a path that went dark and can
// move to another (PROTOCOL.md §6.6.7); once a round trip at most, and
// only in ACKs of packets that carried more than a PING, so two idle
// ends never ping each other in a loop.
func (s *Session) pingWithAck(now time.Time) bool {
	for i := 0; i < s.numPaths(); i++ {
		if s.path(i).eliciting > 0 {
			return false
		}
	}
	return now.Sub(s.lastElicit) >= s.rec.rtt.Smoothed()
}

// keepAliveDue reports whether to send a keepalive PING: only when nothing
// has arrived for the keepalive interval (and none was sent in it), so one
// side's PING and the other's ACK keep both idle timers fresh.
func (s *Session) keepAliveDue(now time.Time) bool {
	return s.cfg.KeepAlive > 0 && !now.Before(s.keepAliveAt())
}

func (s *Session) keepAliveAt() time.Time {
	last := s.lastRecv
	if s.lastPing.After(last) {
		last = s.lastPing
	}
	if s.role == Responder {
		// Break the symmetry of two sessions that started together: the
		// initiator's PING normally comes first and serves both sides.
		return last.Add(s.cfg.KeepAlive * 5 / 4)
	}
	return last.Add(s.cfg.KeepAlive)
}

// spinOut is the spin bit to send: the initiator inverts what it last
// received, the responder echoes it (RFC 9000 §17.4).
func (s *Session) spinOut() bool {
	if s.role == Initiator {
		return !s.spin
	}
	return s.spin
}

// fits reports whether a message of n bytes fits after alignment.
func (s *Session) fits(p []byte, room, n int) bool {
	return wire.MessageStart(len(p), s.align)+n <= room
}

// controlPending reports whether channel 0 has a message to send.
func (s *Session) controlPending() bool {
	return s.ctrlMaxData || s.ctrlMaxChans || s.ctrlBlocked || s.ctrlResponse || s.ctrlChallenge ||
		s.addrs.pending != 0
}

// appendControl adds channel-0 control messages.
func (s *Session) appendControl(p []byte, room int, sp *sentPacket) ([]byte, bool) {
	m := &s.store.out
	added := false
	if s.ctrlMaxData && s.fits(p, room, 16) && s.sent.record(sp, frameRef{kind: fMaxDataSess}) {
		m.maxData.Max = s.recvLimit
		p = m.maxData.Append(wire.AppendAlign(p, s.align))
		s.ctrlMaxData, added = false, true
	}
	if s.ctrlMaxChans && s.fits(p, room, 8) && s.sent.record(sp, frameRef{kind: fMaxChannels}) {
		m.maxChans.Max = s.creditSent
		p = m.maxChans.Append(wire.AppendAlign(p, s.align))
		s.creditAnnounced = s.creditSent
		s.ctrlMaxChans, added = false, true
	}
	if s.ctrlBlocked && s.fits(p, room, 16) {
		m.blocked.Limit = s.sendLimit
		p = m.blocked.Append(wire.AppendAlign(p, s.align))
		s.ctrlBlocked, added = false, true
	}
	if s.ctrlResponse && s.fits(p, room, 16) {
		m.response.Data = s.pathResponse
		p = m.response.Append(wire.AppendAlign(p, s.align))
		s.ctrlResponse, added = false, true
	}
	if s.ctrlChallenge && s.fits(p, room, 16) && s.sent.record(sp, frameRef{kind: fChallenge}) {
		m.challenge.Data = s.pathChallenge
		p = m.challenge.Append(wire.AppendAlign(p, s.align))
		s.ctrlChallenge, added = false, true
	}
	if s.addrs.pending != 0 {
		var more bool
		p, more = s.appendAddresses(p, room, sp)
		added = added || more
	}
	return p, added
}

// ready reports whether channel c can contribute to a packet now.
func (s *Session) ready(c *channel) bool {
	return c.wantsToSend(s.sessionCredit())
}

// sessionCredit is how many new stream bytes the session limit allows.
func (s *Session) sessionCredit() uint64 {
	if s.sendTotal >= s.sendLimit {
		return 0
	}
	return s.sendLimit - s.sendTotal
}

// minUnsentCap is the least unsentCap gives each stream: about a
// round's worth of packets per stream at the rates the benchmarks see
// (docs/PERFORMANCE.md, "Unsent bytes bounded among several streams").
const minUnsentCap = 64 << 10

// unsentCap bounds how many bytes stream c keeps written and not yet
// sent while other channels are queued to send too: the send buffer
// divided among them and c, at least minUnsentCap; 0 (no bound) when c is
// alone. The bound is the sender's own policy, like TCP_NOTSENT_LOWAT: the
// wire and the peer see nothing of it. Without it, each of eight streams
// kept ~650 KiB written ahead of what it sent, so the bytes a packet
// carried had been written ~5 MiB earlier and were read back from outside
// the core's caches (12 % of an eight-stream sender's CPU, in the copy
// into the packet); one stream sends what it wrote soon enough and is not
// bounded, since a writer held back waits and wakes more often.
func (s *Session) unsentCap(c *channel) int {
	n := s.sched.n
	if !c.queued {
		n++
	}
	if n <= 1 {
		return 0
	}
	return max(s.cfg.SendBuffer/int(n), minUnsentCap)
}

// unsentClamp returns want, or less when stream c's writes may take only
// that much under unsentCap; a writer cut short is noted (capBlocked) so
// that appendStream wakes it once sending made room.
func (s *Session) unsentClamp(c *channel, want int) int {
	if room := c.send.UnsentRoom(s.unsentCap(c)); room < want {
		c.capBlocked = true
		return room
	}
	return want
}

// appendChannel adds channel c's control messages and data.
func (s *Session) appendChannel(c *channel, p []byte, room int, sp *sentPacket) ([]byte, bool) {
	m := &s.store.out
	start := len(p)
	if c.local && !c.openSeen && c.state != chDone && s.sent.record(sp, frameRef{kind: fOpen, ch: c.id}) {
		m.open = wire.Open{Type: c.typ, Priority: c.prio, Service: append(m.open.Service[:0], c.service...)}
		m.open.Window = uint32(c.recvLimit) // bytes, or datagrams (§5.10)
		p = m.open.Append(wire.AppendAlign(p, s.align))
		c.pending &^= pendOpen
	}
	if c.pending&pendAccept != 0 && s.fits(p, room, 8) && s.sent.record(sp, frameRef{kind: fAccept, ch: c.id}) {
		m.accept.Window = uint32(c.recvLimit)
		p = m.accept.Append(wire.AppendAlign(p, s.align))
		c.pending &^= pendAccept
	}
	if c.pending&pendRefuse != 0 && s.fits(p, room, 8+len(c.refuseText)) && s.sent.record(sp, frameRef{kind: fRefuse, ch: c.id}) {
		m.refuse = wire.Refuse{Code: c.closeCode, Reason: append(m.refuse.Reason[:0], c.refuseText...)}
		p = m.refuse.Append(wire.AppendAlign(p, s.align))
		c.pending &^= pendRefuse
		c.unackedCtl++
	}
	if c.pending&pendMaxData != 0 && s.fits(p, room, 16) && s.sent.record(sp, frameRef{kind: fMaxDataCh, ch: c.id}) {
		m.maxData.Max = c.recvLimit
		p = m.maxData.Append(wire.AppendAlign(p, s.align))
		c.pending &^= pendMaxData
	}
	if c.pending&pendBlocked != 0 && s.fits(p, room, 16) {
		m.blocked.Limit = c.sendLimit
		p = m.blocked.Append(wire.AppendAlign(p, s.align))
		c.pending &^= pendBlocked
	}
	if c.pending&pendClose != 0 && s.fits(p, room, 8) && s.sent.record(sp, frameRef{kind: fCloseCh, ch: c.id}) {
		m.close = wire.Close{Code: c.closeCode}
		p = m.close.Append(wire.AppendAlign(p, s.align))
		c.pending &^= pendClose
		c.unackedCtl++
	}
	if c.pending&pendReset != 0 && s.fits(p, room, 16) && s.sent.record(sp, frameRef{kind: fReset, ch: c.id}) {
		m.reset = wire.Reset{Code: c.resetCode, FinalSize: c.send.SentMax()}
		p = m.reset.Append(wire.AppendAlign(p, s.align))
		c.pending &^= pendReset
		c.unackedCtl++
	}
	if c.isStream() {
		p = s.appendStream(c, p, room, sp)
	} else {
		p = s.appendDatagrams(c, p, room, sp)
	}
	return p, len(p) > start
}

// appendStream adds retransmitted, then new stream data, copied from the
// send buffer straight into the packet.
func (s *Session) appendStream(c *channel, p []byte, room int, sp *sentPacket) []byte {
	if c.resetSent || c.send == nil {
		return p
	}
	for pass := 0; pass < 2; pass++ {
		hdrAt := wire.MessageStart(len(p), s.align)
		avail := room - hdrAt - wire.MsgHeaderLen
		if avail <= 0 || int(sp.nf) == maxFrames {
			return p
		}
		q := wire.AppendAlign(p, s.align)[:hdrAt+wire.MsgHeaderLen]
		var off uint64
		var n int
		var fin bool
		if pass == 0 {
			q, off, n, fin = c.send.AppendLost(q, avail)
			s.stats.StreamBytesRetransmitted += uint64(n)
		} else if !c.peerStopped {
			limit := c.newDataLimit(s.sessionCredit())
			before := c.send.SentMax()
			q, off, n, fin = c.send.AppendNew(q, avail, limit)
			if c.capBlocked && c.send.UnsentRoom(s.unsentCap(c)) > 0 {
				c.capBlocked = false
				s.emit(c, EventWritable)
			}
			grew := c.send.SentMax() - before
			s.sendTotal += grew
			s.stats.StreamBytesSent += grew
			if c.send.Blocked(limit) {
				s.noteBlocked(c, limit)
			}
		}
		if n == 0 && !fin {
			continue
		}
		var flags uint8
		if fin {
			flags = wire.StreamFin
		}
		mh := wire.MessageHeader{ID: wire.MsgStream, Flags: flags, Length: uint16(n), Arg: uint32(off)}
		mh.Append(q[hdrAt:hdrAt])
		s.sent.record(sp, frameRef{kind: fStream, ch: c.id, off: off, n: uint32(n), fin: fin})
		p = q
	}
	return p
}

// noteBlocked queues BLOCKED messages when flow control, not the packet,
// stopped new data; once per limit value.
func (s *Session) noteBlocked(c *channel, limit uint64) {
	if limit == c.sendLimit && c.blockedAt != c.sendLimit {
		c.blockedAt = c.sendLimit
		c.pending |= pendBlocked
	}
	if s.sessionCredit() == 0 && s.blockedSent != s.sendLimit {
		s.blockedSent = s.sendLimit
		s.ctrlBlocked = true
	}
}

// appendDatagrams adds queued datagrams, whole or as fragments, within
// the peer's datagram limit (PROTOCOL.md §5.10), then a BLOCKED when that
// limit stopped them. Datagrams are never retransmitted, so nothing is
// recorded for them.
func (s *Session) appendDatagrams(c *channel, p []byte, room int, sp *sentPacket) []byte {
	freed := false
	f := c.fecOut
	if f != nil && f.pending() {
		// A closed group's repairs go first, one per packet.
		return s.appendDatagramBlocked(c, s.appendRepair(c, p, room), room, sp)
	}
	for c.dgOut.len() > 0 && c.dgCanSend() && (f == nil || !f.pending()) {
		total, sent := c.dgOut.headLen(), c.dgOut.sent
		hdrAt := wire.MessageStart(len(p), s.align)
		avail := room - hdrAt - wire.MsgHeaderLen
		fresh := room - wire.MessageStart(wire.HeaderLen, s.align) - wire.MsgHeaderLen
		seq := uint32(c.dgOutSeq) // the low 32 bits go on the wire
		if sent == 0 && total <= avail {
			q := wire.AppendAlign(p, s.align)
			mh := wire.MessageHeader{ID: wire.MsgDatagram, Length: uint16(total), Arg: seq}
			q = mh.Append(q)
			q = q[:len(q)+total]
			c.dgOut.copyHead(q[len(q)-total:], 0)
			p = q
			if f != nil && s.fecProtect(c, c.dgOutSeq, q[len(q)-total:], fresh) {
				// One protected datagram per packet: a lost packet then
				// costs its group one symbol (PROTOCOL.md §5.11).
				c.dgOut.pop()
				c.dgOutSeq++
				s.stats.DatagramsSent++
				freed = true
				break
			}
		} else {
			if sent == 0 && total <= fresh || avail <= 8 {
				break // whole in the next packet, or no room here
			}
			if f != nil && sent == 0 {
				f.close() // a fragmented datagram is in no group (PROTOCOL.md §5.11)
				if f.pending() {
					break // the group's repairs go first
				}
			}
			n := min(total-sent, avail-8)
			q := wire.AppendAlign(p, s.align)
			mh := wire.MessageHeader{ID: wire.MsgDatagram, Flags: wire.DatagramFragment, Length: uint16(8 + n), Arg: seq}
			q = mh.Append(q)
			q = le32append(le32append(q, uint32(total)), uint32(sent))
			q = q[:len(q)+n]
			c.dgOut.copyHead(q[len(q)-n:], sent)
			p = q
			c.dgOut.sent += n
			if c.dgOut.sent < total {
				break
			}
		}
		c.dgOut.pop()
		c.dgOutSeq++
		s.stats.DatagramsSent++
		freed = true
	}
	p = s.appendDatagramBlocked(c, p, room, sp)
	if freed {
		s.emit(c, EventWritable)
	}
	return p
}

func le32append(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

// buildClose sends the session CLOSE while closing, on the path ACKs
// take.
func (s *Session) buildClose(b []byte, now time.Time) (int, int) {
	if s.closeSent || len(b) < s.mtu {
		return 0, 0
	}
	h := wire.Header{Destination: s.peer, Source: s.local, PacketNumber: s.nextPN}
	p := h.Append(b[:0])
	reason := s.closeMsg
	if max := s.mtu - wire.TagLen - len(p) - wire.MsgHeaderLen - 16; len(reason) > max {
		reason = reason[:max]
	}
	m := &s.store.out
	m.close = wire.Close{Code: s.closeCode, Reason: append(m.close.Reason[:0], reason...)}
	p = m.close.Append(wire.AppendAlign(p, s.align))
	sp := s.sent.add()
	k := s.ackPath()
	s.finishPacket(sp, k, len(p), false, now, 0, 0)
	s.closeSent = true
	if s.closeUntil.IsZero() {
		s.closeUntil = now.Add(3 * s.rec.rtt.PTO(s.cfg.MaxAckDelay))
	}
	return len(p), k
}
