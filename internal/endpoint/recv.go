package endpoint

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/havenproto/haven/alignment"
	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/internal/udp"
	"github.com/havenproto/haven/wire"
)

// The receive path of an endpoint: its one reader goroutine, the routing
// of each packet (or GRO train) to its session's inbox, and the handshake
// packets it answers on the spot (docs/ARCHITECTURE.md, "In").

// readBatch is how many datagrams (or GRO trains) one read takes.
const readBatch = 16

// readLoop is the endpoint's one reader: it reads batches (splitting GRO
// trains into their datagrams), drops foreign traffic, routes handshakes,
// and queues transport packets for their session. Its receive buffers are
// lent by readPool while the socket has data and given back before the
// reader waits (udp.Conn.ReadBatchLent), so an idle endpoint holds none.
func (ep *Endpoint) readLoop(l *link) {
	defer ep.wg.Done()
	if pr, ok := l.t.(packetReader); ok {
		ep.readPackets(l, pr)
		return
	}
	lr := l.t.(lentReader) // readable checked it when the link was made
	rs := &l.reader
	msgs := rs.msgs[:]
	lender := &rs.bufs
	defer lender.Return(msgs)
	out := rs.out[:0]
	for {
		n, err := lr.ReadBatchLent(msgs, lender)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		for i := range msgs[:n] {
			m := &msgs[i]
			if m.Truncated {
				continue
			}
			from := path{l, netip.AddrPortFrom(m.Addr.Addr().Unmap(), m.Addr.Port())}
			if m.Segment <= 0 {
				if ep.receive(m.Buf[:m.N], from, out, &lender.bufs[i], readPool) {
					m.Buf = nil // the next read lends a fresh buffer here
				}
				continue
			}
			if ep.receiveTrain(m.Buf[:m.N], m.Segment, from, &lender.bufs[i]) {
				m.Buf = nil
				continue
			}
			for off := 0; off < m.N; off += m.Segment {
				ep.receive(m.Buf[off:min(off+m.Segment, m.N)], from, out, nil, nil)
			}
		}
	}
}

// lentReader is a Transport read into buffers the endpoint lends
// (*udp.Conn: recvmmsg, GRO).
type lentReader interface {
	ReadBatchLent(msgs []udp.Message, l udp.Lender) (int, error)
}

// packetReader is a Transport that reads whole packets into pooled
// buffers of its own and hands them over (compat.StreamTransport, the TCP
// fallback): lending it buffers would copy each packet once more.
type packetReader interface {
	ReadPackets(pkts []udp.Packet) (int, error)
}

// readable reports whether t can be read one of the two ways.
func readable(t Transport) bool {
	_, lent := t.(lentReader)
	_, pkts := t.(packetReader)
	return lent || pkts
}

// errNoReader: a Transport with neither ReadBatchLent nor ReadPackets.
var errNoReader = errors.New("endpoint: transport has neither ReadBatchLent nor ReadPackets")

// readPackets is readLoop for a packetReader: each packet goes to receive
// with its buffer, which receive keeps for the inbox or the loop puts back.
func (ep *Endpoint) readPackets(l *link, pr packetReader) {
	var pkts [readBatch]udp.Packet
	out := l.reader.out[:0]
	for {
		n, err := pr.ReadPackets(pkts[:])
		for i := range pkts[:n] {
			p := &pkts[i]
			from := path{l, netip.AddrPortFrom(p.Addr.Addr().Unmap(), p.Addr.Port())}
			if !ep.receive(p.Buf, from, out, &p.PB, p.Pool) {
				p.Pool.Put(p.PB)
			}
			*p = udp.Packet{}
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// receive handles one datagram. pb, when not nil, is the buffer of pool
// that holds pkt alone: a transport packet of handOverMin bytes or more
// goes to its session together with that buffer instead of being copied,
// and receive reports true, having zeroed *pb (the buffer is the inbox's
// now).
func (ep *Endpoint) receive(pkt []byte, from path, out []byte, pb *alignment.Buffer,
	pool *alignment.Pool) bool {
	var h wire.Header
	if h.Parse(pkt) != nil || h.Length != 0 || h.Destination.Auth() != ep.id.AuthTagFor(h.Suite) {
		return false
	}
	if h.IsHandshake() {
		ep.handshake(pkt, &h, from, out)
		return false
	}
	s := ep.sessionOf(&h)
	if s == nil {
		return false
	}
	if pb == nil || len(pkt) < handOverMin {
		s.deliver(pkt, from)
		return false
	}
	if !s.enqueue(inPacket{buf: pkt, from: from, pb: *pb, pool: pool}) {
		return false // the inbox is full: dropped, as deliver would
	}
	*pb = alignment.Buffer{}
	return true
}

// sessionOf returns the session a transport packet with header h belongs
// to: the one under its destination ephemeral value, if the source peer id
// and the construction are the session's; nil otherwise.
func (ep *Endpoint) sessionOf(h *wire.Header) *Session {
	ep.mu.Lock()
	s := ep.sessions[h.Destination.Ephemeral()]
	ep.mu.Unlock()
	if s == nil || h.Source != s.remoteID || h.Suite != s.suite {
		return nil
	}
	return s
}

// receiveTrain hands a whole GRO train (datagrams of seg bytes, the last
// possibly shorter, all from one path) to its session in the read buffer pb
// that holds it, instead of copying each datagram into the packet pool:
// one copy, one pool round trip and one inbox lock less per datagram in a
// bulk transfer at 1,500-byte MTUs. It does so only when every datagram is
// a transport packet of this endpoint for one and the same session, and
// the train is at least handOverMin bytes; otherwise it reports false and
// the reader splits the train as before. On true *pb is zeroed: the buffer
// is the inbox's now.
func (ep *Endpoint) receiveTrain(train []byte, seg int, from path, pb *alignment.Buffer) bool {
	if len(train) < handOverMin || seg < wire.Overhead || seg >= len(train) {
		return false
	}
	var h wire.Header
	if h.Parse(train) != nil || h.Length != 0 || h.IsHandshake() || h.Destination.Auth() != ep.id.AuthTagFor(h.Suite) {
		return false
	}
	for off := seg; off < len(train); off += seg {
		p := train[off:min(off+seg, len(train))]
		var g wire.Header
		if g.Parse(p) != nil || g.Length != 0 || g.IsHandshake() || g.Suite != h.Suite ||
			g.Destination != h.Destination || g.Source != h.Source {
			return false
		}
	}
	s := ep.sessionOf(&h)
	if s == nil {
		return false
	}
	if !s.enqueue(inPacket{buf: train, seg: seg, from: from, pb: *pb, pool: readPool}) {
		return false // the inbox is full: the reader's split drops each datagram as well
	}
	*pb = alignment.Buffer{}
	return true
}

// handOverMin is the smallest packet the reader hands over in its own
// read buffer rather than copying: a packet found by path MTU discovery
// (8,952 bytes and up) costs more to copy than the 64 KiB buffer; a
// smaller one is copied into the packet pool, and the read buffer stays.
const handOverMin = 8 << 10

// handshake routes a handshake packet (PROTOCOL.md §7).
func (ep *Endpoint) handshake(pkt []byte, h *wire.Header, from path, out []byte) {
	if len(pkt) < wire.HeaderLen+wire.MsgHeaderLen {
		return
	}
	eph := h.Destination.Ephemeral()
	switch wire.MsgID(pkt[wire.HeaderLen]) {
	case wire.MsgHandshakeInit:
		resp := ep.resp
		switch {
		case resp == nil && eph != 0:
			// A dialer answers the rekeys of its own sessions: the peer
			// may start one (PROTOCOL.md §7.6), and when both start one at
			// once the tie-break may pick the peer's. Before, a dialer
			// dropped it, and such a crossing never completed: the peer
			// kept waiting for the answer to its own and ignored ours.
			if resp = ep.rekeyResponder(); resp == nil {
				return
			}
		case resp == nil, ep.noAccept.Load() && eph == 0:
			return
		}
		if eph == 0 && ep.cfg.Authorize != nil {
			ep.admitMu.RLock()
			defer ep.admitMu.RUnlock()
		}
		var rekeyed *Session
		if eph != 0 {
			ep.mu.Lock()
			rekeyed = ep.sessions[eph]
			ep.mu.Unlock()
			if rekeyed == nil {
				return
			}
		}
		local := eph
		if local == 0 {
			if local = ep.reserveEphemeral(); local == 0 {
				return
			}
		}
		now := time.Now()
		reply, err := resp.HandleInitiation(out[:0], pkt, from.addr, now, secure.LoadState{Overloaded: ep.overloaded()}, local)
		if err != nil {
			if eph == 0 {
				ep.releaseEphemeral(local)
			}
			return
		}
		if reply.Kind == secure.ReplyCookie {
			if eph == 0 {
				ep.releaseEphemeral(local)
			}
			ep.writeTo(reply.Packet, from)
			return
		}
		est := reply.Session
		if rekeyed != nil {
			if est.Peer != rekeyed.peer || !rekeyed.rekeyed(est, now) {
				est.Discard()
				return
			}
		} else if !ep.startSession(local, est, from, now) {
			est.Discard()
			return
		}
		ep.writeTo(reply.Packet, from)
	case wire.MsgHandshakeResponse, wire.MsgCookieReply:
		ep.mu.Lock()
		d := ep.dials[eph]
		s := ep.sessions[eph]
		ep.mu.Unlock()
		switch {
		case d != nil:
			d.offer(ep.pool, pkt, from)
		case s != nil:
			s.rekeyReply(pkt)
		}
	}
}

// rekeyResponder returns the responder a dialer answers its sessions'
// rekeys with, made on first use (reader goroutine only). Its tables are
// small: it only ever answers peers this endpoint has a session with.
func (ep *Endpoint) rekeyResponder() *secure.Responder {
	if ep.rekeyResp == nil {
		rc := secure.ResponderConfig{Params: ep.cfg.Session.Params(), Authorize: ep.cfg.Authorize,
			RateTableSize: 16, MaxPeers: 16}
		r, err := secure.NewResponder(ep.id, rc, nil)
		if err != nil {
			return nil
		}
		ep.rekeyResp = r
	}
	return ep.rekeyResp
}
