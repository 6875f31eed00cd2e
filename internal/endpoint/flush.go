package endpoint

import (
	"github.com/havenproto/haven/alignment"
	"github.com/havenproto/haven/internal/udp"
)

// flush writes a run's sealed packets in one batch (sendmmsg). Consecutive
// packets of one size to one address (the last of a run may be shorter)
// go as one UDP GSO message, copied back to back into a pooled buffer: the
// kernel then splits them, one system call for up to 64 packets. Called
// without s.mu; sc is the caller's scratch (the running worker's own, or a
// fresh one for closeNow, which may overlap a worker).
func (s *Session) flush(out []outPacket, sc *writeScratch) {
	if len(out) == 0 {
		return
	}
	msgs := sc.msgs[:0]
	gso := sc.gso[:0]
	for i := 0; i < len(out); {
		p := out[i]
		size, j, total := len(p.buf), i+1, len(p.buf)
		for j < len(out) && j-i < udp.MaxSegments && out[j].addr == p.addr &&
			len(out[j].buf) <= size && total+len(out[j].buf) <= udp.MaxPayload {
			total += len(out[j].buf)
			j++
			if len(out[j-1].buf) < size {
				break // a shorter segment ends a GSO message
			}
		}
		if j-i == 1 {
			msgs = append(msgs, udp.Message{Buf: p.buf, Addr: p.addr})
			i = j
			continue
		}
		b, ok := alignment.Default().Get(total)
		if !ok {
			msgs = append(msgs, udp.Message{Buf: p.buf, Addr: p.addr})
			i++
			continue
		}
		gso = append(gso, b)
		buf := b.Bytes()[:0]
		for k := i; k < j; k++ {
			buf = append(buf, out[k].buf...)
		}
		msgs = append(msgs, udp.Message{Buf: buf, Addr: p.addr, Segment: size})
		i = j
	}
	for sent := 0; sent < len(msgs); {
		n, err := s.ep.conn.WriteBatch(msgs[sent:])
		if err != nil && n == 0 {
			break // a socket error: the packets count as lost
		}
		sent += n
	}
	for _, b := range gso {
		alignment.Default().Put(b)
	}
	for i := range msgs {
		msgs[i] = udp.Message{}
	}
	sc.msgs, sc.gso = msgs[:0], gso[:0]
}

// writeScratch is reused across the batches of one writer.
type writeScratch struct {
	msgs []udp.Message
	gso  []alignment.Buffer
}
