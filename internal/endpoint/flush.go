package endpoint

import (
	"github.com/havenproto/haven/alignment"
	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/internal/udp"
)

// Sealed packets are built in place (docs/ARCHITECTURE.md, "Sending"): the
// engine writes each packet straight into a run's arena, the packet is
// sealed there, and the socket sends it from there. Consecutive full-size
// packets of one arena are already back to back, so one UDP GSO message
// covers them without a copy.

const (
	// arenaSize is the bytes of one arena a run fills: a GSO message's
	// most (udp.MaxPayload), so that any back-to-back stretch of an arena
	// fits one message.
	arenaSize = udp.MaxPayload
	// maxRunArenas bounds what one run produces (8 × 64 KiB); a session
	// with more to send kicks itself and goes round again, so that one
	// busy session neither hoards pool buffers nor starves the others.
	maxRunArenas = 8
)

// run is what one worker turn produced: sealed packets in arenas, and
// the scratch to write them.
//
// Ownership: a run belongs to one runOnce (or closeNow) of one session,
// from runPool.get to runPool.put; its arenas belong to it from
// packetSpace until recycle puts them back to alignment.Default(), after
// flush has written every packet; out's buffers point into them (or, for
// the rare packet built elsewhere, such as a rekey initiation, into their
// own slices).
type run struct {
	out    []outPacket
	jobs   []secure.SealJob
	opens  []secure.OpenJob // takeInbox's decryption jobs, one per received packet
	arenas []alignment.Buffer
	aoff   int          // bytes used in the last arena
	ws     writeScratch // the batch of messages flush writes
	lender packetLender // takeInbox's holder of the packet it applies
}

// runPool holds the runs between turns, shared by every session: a run's
// slices grow to a busy turn's size once and serve any session after, so
// sessions allocate nothing per turn and hold nothing while idle. There
// are about as many in use as turns in progress at once (the run workers
// and inline writers); it keeps up to 64 (each at most a few tens of KiB).
var runPool = freeList[run]{max: 64}

// packetSpace returns room for one packet of up to size bytes in the
// run's last arena, taking a new arena when it is full, and the arena's
// index; nil when the run already holds maxRunArenas. The slice's
// capacity runs to the arena's end: the seal appends the tag in place.
func (r *run) packetSpace(size int) ([]byte, int32) {
	if k := len(r.arenas); k > 0 && r.aoff+size <= arenaSize {
		return r.arenas[k-1].Bytes()[r.aoff : r.aoff+size : arenaSize], int32(k - 1)
	}
	if len(r.arenas) == maxRunArenas || size > arenaSize {
		return nil, -1
	}
	a, ok := alignment.Default().Get(arenaSize)
	if !ok {
		return nil, -1
	}
	r.arenas = append(r.arenas, a)
	r.aoff = 0
	return a.Bytes()[:size:arenaSize], int32(len(r.arenas) - 1)
}

// recycle puts the run's arenas back and empties it for reuse.
func (r *run) recycle() {
	for i, a := range r.arenas {
		alignment.Default().Put(a)
		r.arenas[i] = alignment.Buffer{}
	}
	for i := range r.out {
		r.out[i] = outPacket{}
	}
	clear(r.opens) // they point into packets that are the pool's again
	r.out, r.jobs, r.opens, r.arenas, r.aoff = r.out[:0], r.jobs[:0], r.opens[:0], r.arenas[:0], 0
}

// follows reports whether q starts where p ends in the same arena.
func follows(p, q outPacket) bool {
	return p.arena >= 0 && p.arena == q.arena && cap(p.buf)-len(p.buf) == cap(q.buf)
}

// flush writes a run's sealed packets in one batch (sendmmsg). Packets
// back to back in one arena, of one size, to one address (the last of a
// stretch may be shorter) go as one UDP GSO message straight from the
// arena: the kernel splits them, one system call for up to 64 packets.
// Called without s.mu; sc is the caller's scratch (the running worker's
// own, or a fresh one for closeNow, which may overlap a worker).
func (s *Session) flush(out []outPacket, sc *writeScratch) {
	if len(out) == 0 {
		return
	}
	msgs := sc.msgs[:0]
	for i := 0; i < len(out); {
		p := out[i]
		size, j, total := len(p.buf), i+1, len(p.buf)
		// A stretch starts with two packets of the same size: a path MTU
		// probe larger than the path's packets must leave alone, or the
		// kernel refuses the whole message (EMSGSIZE) and the packet
		// after the probe, which the path carries, is lost with it.
		for j < len(out) && j-i < udp.MaxSegments && out[j].to == p.to &&
			follows(out[j-1], out[j]) && len(out[j].buf) <= size && (j > i+1 || len(out[j].buf) == size) &&
			total+len(out[j].buf) <= udp.MaxPayload {
			total += len(out[j].buf)
			j++
			if len(out[j-1].buf) < size {
				break // a shorter segment ends a GSO message
			}
		}
		m := udp.Message{Buf: p.buf, Addr: p.to.addr}
		if j-i > 1 {
			m = udp.Message{Buf: p.buf[:total], Addr: p.to.addr, Segment: size}
		}
		if len(msgs) > 0 && sc.link != p.to.l {
			write(sc.link, msgs) // another link: write what is for the last
			clear(msgs)
			msgs = msgs[:0]
		}
		sc.link = p.to.l
		msgs = append(msgs, m)
		i = j
	}
	write(sc.link, msgs)
	clear(msgs)
	sc.msgs, sc.link = msgs[:0], nil
}

// write writes msgs on l. A message that fails (EMSGSIZE for a path MTU
// probe larger than the interface, a full or closed socket) counts as
// lost, and the rest of the batch still goes.
func write(l *link, msgs []udp.Message) {
	for sent := 0; sent < len(msgs); {
		n, err := l.t.WriteBatch(msgs[sent:])
		if err != nil && n == 0 {
			n = 1
		}
		sent += n
	}
}

// writeScratch is reused across the batches of one writer: the messages,
// all for one link.
type writeScratch struct {
	msgs []udp.Message
	link *link
}
