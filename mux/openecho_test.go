package mux

import (
	"io"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/havenproto/haven/wire"
)

// The cost of opening a channel for one request (issue #7): packets, held
// ACCEPTs, wake-ups, and the session's fixed size.

// wireLog moves packets between two sessions one Poll at a time at a fixed
// instant, and records each packet's messages ("ACK,OPEN,STREAM").
type wireLog struct {
	t    *testing.T
	now  time.Time
	buf  []byte
	sent []string
}

// flush delivers everything from can send now to to, and returns the
// packets' descriptions.
func (w *wireLog) flush(from, to *Session) []string {
	var out []string
	for {
		n := from.Poll(w.buf, w.now)
		if n == 0 {
			w.sent = append(w.sent, out...)
			return out
		}
		out = append(out, messageNames(w.t, w.buf[:n], from.align))
		to.Receive(w.buf[:n], w.now)
	}
}

func messageNames(t *testing.T, pkt []byte, align int) string {
	var r wire.MessageReader
	r.Reset(pkt, align)
	var names []string
	for r.Next() {
		names = append(names, r.Header().ID.String())
	}
	if r.Err() != nil {
		t.Fatalf("malformed packet: %v", r.Err())
	}
	return strings.Join(names, ",")
}

// acceptAll accepts the peer's channels and returns the last one.
func acceptAll(t *testing.T, s *Session) uint32 {
	var id uint32
	for {
		ev, ok := s.PollEvent()
		if !ok {
			return id
		}
		if ev.Kind&EventIncoming != 0 {
			if err := s.Accept(ev.Channel); err != nil {
				t.Fatal(err)
			}
			id = ev.Channel
		}
	}
}

func drainEvents(s *Session) {
	for {
		if _, ok := s.PollEvent(); !ok {
			return
		}
	}
}

// established returns a pair whose key-confirmation exchange is over.
func established(t *testing.T) (a, b *Session, w *wireLog) {
	now := time.Unix(1e9, 0)
	a, b = pair(t, Config{}, Config{}, now)
	w = &wireLog{t: t, now: now, buf: make([]byte, 65536)}
	a.Ping()
	w.flush(a, b)
	w.now = w.now.Add(time.Second)
	w.flush(b, a)
	w.flush(a, b)
	w.sent = nil
	return a, b, w
}

// TestOpenEchoPackets: open a channel with a request, echo it, close both
// ends, as the OpenEcho benchmark does. The server's ACCEPT rides with its
// answer and the ACK, so the exchange takes four packets, none of them an
// ACCEPT or ACK alone, and both ends forget the channel afterwards.
func TestOpenEchoPackets(t *testing.T) {
	a, b, w := established(t)
	rd := make([]byte, 16)
	for round := 0; round < 3; round++ {
		w.sent = nil
		id, err := a.OpenStream("", 3)
		if err != nil {
			t.Fatal(err)
		}
		a.Write(id, []byte("Ex"))
		if got := w.flush(a, b); len(got) != 1 || !strings.HasSuffix(got[0], "OPEN,STREAM") {
			t.Fatalf("round %d: request packets %q, want one with OPEN,STREAM", round, got)
		}
		sid := acceptAll(t, b)
		if got := w.flush(b, a); len(got) != 0 {
			t.Fatalf("round %d: server sent %q before answering: the ACCEPT should wait for the answer", round, got)
		}
		n, _ := b.Read(sid, rd)
		b.Write(sid, rd[1:n])
		if got := w.flush(b, a); len(got) != 1 || got[0] != "ACK,ACCEPT,STREAM" {
			t.Fatalf("round %d: answer packets %q, want [ACK,ACCEPT,STREAM]", round, got)
		}
		drainEvents(a)
		if got := w.flush(a, b); len(got) != 0 {
			t.Fatalf("round %d: client sent %q after one packet: its ACK should be delayed", round, got)
		}
		if n, err := a.Read(id, rd); n != 1 || rd[0] != 'x' || err != nil {
			t.Fatalf("round %d: echo read %d %q %v", round, n, rd[:n], err)
		}
		a.CloseChannel(id, 0)
		w.flush(a, b)
		drainEvents(b)
		if _, err := b.Read(sid, rd); err != io.EOF {
			t.Fatalf("round %d: server read %v, want EOF", round, err)
		}
		b.CloseWrite(sid)
		b.CloseChannel(sid, 0)
		w.flush(b, a)
		w.flush(a, b)
		if len(w.sent) != 4 {
			t.Fatalf("round %d: %d packets %q, want 4", round, len(w.sent), w.sent)
		}
		// The client's ACK of the last packet goes after the ACK delay.
		w.now = w.now.Add(a.cfg.MaxAckDelay)
		w.flush(a, b)
		w.flush(b, a)
		if a.channels.Len() != 0 || b.channels.Len() != 0 {
			t.Fatalf("round %d: channels left: client %d, server %d", round, a.channels.Len(), b.channels.Len())
		}
		drainEvents(a)
		drainEvents(b)
	}
}

// TestHeldAcceptGoesWithTheAck: an ACCEPT held for an answer that does not
// come goes when the ACK of the OPEN falls due (MaxAckDelay), in the same
// packet, and Deadline says when.
func TestHeldAcceptGoesWithTheAck(t *testing.T) {
	a, b, w := established(t)
	id, _ := a.OpenStream("", 3)
	a.Write(id, []byte("request"))
	w.flush(a, b)
	acceptAll(t, b)
	if got := w.flush(b, a); len(got) != 0 {
		t.Fatalf("sent %q at once", got)
	}
	due := w.now.Add(b.cfg.MaxAckDelay)
	if d := b.Deadline(); !d.Equal(due) {
		t.Fatalf("deadline %v after the OPEN, want the ACK delay %v", d.Sub(w.now), b.cfg.MaxAckDelay)
	}
	w.now = due
	if got := w.flush(b, a); len(got) != 1 || got[0] != "ACK,ACCEPT" {
		t.Fatalf("at the ACK delay: %q, want [ACK,ACCEPT]", got)
	}
	drainEvents(a)
	if c := a.channels.Lookup(id); c == nil || c.state != chOpen {
		t.Fatal("the opener did not see the ACCEPT")
	}
}

// TestAcceptAtOnceWithoutData: an OPEN without data may have an opener
// waiting for the ACCEPT (Dial does), so the ACCEPT goes at once.
func TestAcceptAtOnceWithoutData(t *testing.T) {
	a, b, w := established(t)
	a.OpenStream("", 3)
	w.flush(a, b)
	acceptAll(t, b)
	if got := w.flush(b, a); len(got) != 1 || !strings.Contains(got[0], "ACCEPT") {
		t.Fatalf("accept of an empty OPEN: %q, want an ACCEPT at once", got)
	}
}

// TestHeldAcceptReleasedByOtherAck: when the ACK the ACCEPT waits for
// leaves in another channel's packet, the ACCEPT follows at once instead
// of waiting for a timer.
func TestHeldAcceptReleasedByOtherAck(t *testing.T) {
	a, b, w := established(t)
	other, _ := b.OpenStream("", 3)
	id, _ := a.OpenStream("", 3)
	a.Write(id, []byte("request"))
	w.flush(a, b)
	acceptAll(t, b)
	b.Write(other, []byte("unrelated"))
	got := w.flush(b, a)
	if len(got) != 2 || !strings.HasPrefix(got[0], "ACK,OPEN") || got[1] != "ACCEPT" {
		t.Fatalf("packets %q, want the other channel's with the ACK, then the ACCEPT", got)
	}
}

// TestTakeWake: reading bytes that leave nothing to send reports no work;
// a write, or a read that makes a window update due, does.
func TestTakeWake(t *testing.T) {
	a, b, w := established(t)
	id, _ := a.OpenStream("", 3)
	a.Write(id, []byte("hello"))
	if !a.TakeWake() {
		t.Fatal("a write reported no work")
	}
	if a.TakeWake() {
		t.Fatal("TakeWake did not start afresh")
	}
	w.flush(a, b)
	sid := acceptAll(t, b)
	b.Write(sid, []byte("x"))
	w.flush(b, a)
	drainEvents(a)
	a.TakeWake()
	rd := make([]byte, 64<<10)
	if n, _ := a.Read(id, rd); n != 1 {
		t.Fatalf("read %d bytes", n)
	}
	if a.TakeWake() {
		t.Fatal("a read that freed little of the window reported work")
	}
	// Reading most of a window makes a MAX_DATA due.
	big := make([]byte, b.peerParams.ChannelWindow*3/4)
	for off := 0; off < len(big); {
		n, _ := b.Write(sid, big[off:])
		off += n
		w.flush(b, a)
		w.flush(a, b)
		w.now = w.now.Add(time.Millisecond)
	}
	for {
		n, _ := a.Read(id, rd)
		if n == 0 {
			break
		}
	}
	if !a.TakeWake() {
		t.Fatal("a read that made a window update due reported no work")
	}
}

// TestSchedulerLevels: channels queued at several priorities are served by
// level, round-robin within one; levels come and go without keeping
// channels alive in the slice's spare room.
func TestSchedulerLevels(t *testing.T) {
	var q scheduler
	mk := func(id uint32, prio uint8) *channel { return &channel{id: id, prio: prio} }
	c9, c3a, c3b, c200 := mk(1, 9), mk(3, 3), mk(5, 3), mk(7, 200)
	for _, c := range []*channel{c9, c200, c3a, c3b, c9} {
		q.wake(c) // c9 twice: still one queued channel
	}
	if q.n != 4 {
		t.Fatalf("%d channels counted, want 4", q.n)
	}
	if len(q.levels) != 3 || q.levels[0].prio != 3 || q.levels[1].prio != 9 || q.levels[2].prio != 200 {
		t.Fatalf("levels %+v", q.levels)
	}
	if q.levels[0].head != c3a {
		t.Fatal("level 3 does not start with the first channel queued")
	}
	q.rotate(c3a)
	if q.levels[0].head != c3b {
		t.Fatal("rotate did not move to the level's next channel")
	}
	q.remove(c3a)
	q.remove(c3b)
	if len(q.levels) != 2 || q.levels[0].prio != 9 {
		t.Fatalf("after emptying level 3: %+v", q.levels)
	}
	if spare := q.levels[:cap(q.levels)]; spare[2].head != nil {
		t.Fatal("a removed level still points at a channel")
	}
	q.remove(c9)
	q.remove(c200)
	q.remove(c200) // not queued: nothing changes
	if q.n != 0 {
		t.Fatalf("%d channels counted after all were removed", q.n)
	}
	if q.hasWork() {
		t.Fatal("work left after every channel was removed")
	}
}

// TestSessionSize: an idle session's fixed cost (issue #7). The scheduler
// no longer has an array of 256 level heads; a Session fits the 2 KiB
// allocation class with room to spare.
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(Session{}); n > 1900 {
		t.Fatalf("Session is %d bytes, want at most 1,900", n)
	}
	if n := unsafe.Sizeof(scheduler{}); n > 48 {
		t.Fatalf("scheduler is %d bytes, want at most 48", n)
	}
}
