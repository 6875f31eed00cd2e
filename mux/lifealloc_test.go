package mux

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// A short session's whole life in the engine: both ends created, one
// stream opened, a 2-byte request, a 1-byte answer, the channel closed on
// both sides and the session closed. It is what a client that dials,
// asks one thing and hangs up costs, and the engine's share of the
// project's allocation budget for it (docs/ARCHITECTURE.md, Buffers and
// ownership).

// lifeAllocBudget is the most heap allocations one such life may cost
// both engines together. The figure measured is 4: each end's Session
// block (New) and its channel; stream rings come from pools. It was 37
// when sub-objects, maps and first entries were allocated separately.
const lifeAllocBudget = 5

// lifeRig runs short session lives. Everything it needs per life is made
// once, so that what a life allocates is the engine's alone.
type lifeRig struct {
	t          testing.TB
	cfg        Config // the zero Config: every default
	idA, idB   wire.PeerID
	parA, parB wire.SessionParams
	align      int
	now        time.Time
	pkt        []byte
	rd         []byte
	req, ans   []byte
	packets    int // packets moved by the last life
}

func newLifeRig(t testing.TB) *lifeRig {
	cfg := Config{}
	par := cfg.Params()
	return &lifeRig{
		t:    t,
		cfg:  cfg,
		idA:  wire.MakePeerID(wire.AuthTag{0xaa, 1, 2, 3}, 0x11111111),
		idB:  wire.MakePeerID(wire.AuthTag{0xbb, 4, 5, 6}, 0x22222222),
		parA: par, parB: par,
		align: par.Align(),
		now:   time.Unix(1e9, 0),
		pkt:   make([]byte, 65536),
		rd:    make([]byte, 64),
		req:   []byte("Ex"),
		ans:   []byte("x"),
	}
}

// move delivers every packet from can send now to to.
func (r *lifeRig) move(from, to *Session) {
	for i := 0; i < 100; i++ {
		n := from.Poll(r.pkt[:from.MaxPacketSize()], r.now)
		if n == 0 {
			return
		}
		r.packets++
		if err := to.Receive(r.pkt[:n], r.now); err != nil {
			r.t.Fatalf("receive: %v", err)
		}
	}
	r.t.Fatal("a session does not stop sending")
}

// events drains s's events and returns the union of their kinds for
// channel id (and the id of an incoming channel, if one arrived).
func (r *lifeRig) events(s *Session, id uint32) (k EventKind, incoming uint32) {
	for {
		ev, ok := s.PollEvent()
		if !ok {
			return k, incoming
		}
		if ev.Kind&EventIncoming != 0 {
			incoming = ev.Channel
		}
		if ev.Channel == id {
			k |= ev.Kind
		}
	}
}

// life runs one session's life. The clock moves on by a minute each time,
// as it would between sessions.
func (r *lifeRig) life() {
	a, b := r.open()
	r.close(a, b)
}

// abruptLife is a life whose client closes its channel and then the
// session at once, as a client that has its answer does: the FIN never
// leaves, and neither end's channel finishes before the session ends.
func (r *lifeRig) abruptLife() {
	a, b, id, sid := r.echo()
	if err := a.CloseChannel(id, 0); err != nil {
		r.t.Fatal(err)
	}
	a.Close(wire.CloseNormal, "")
	r.move(a, b)
	r.events(a, 0)
	if k, _ := r.events(b, sid); k&EventClosed == 0 || b.Err() == nil {
		r.t.Fatal("the server did not see the CLOSE")
	}
	b.CloseChannel(sid, 0)
	r.finish(a, b)
}

// echo creates both ends of a session and runs the echo, up to the
// client's reading the answer. id and sid are the channel at each end.
func (r *lifeRig) echo() (a, b *Session, id, sid uint32) {
	t := r.t
	r.packets = 0
	r.now = r.now.Add(time.Minute)
	a, err := New(r.cfg, Initiator, r.idA, r.idB, r.parB, r.align, r.now)
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(r.cfg, Responder, r.idB, r.idA, r.parA, r.align, r.now)
	if err != nil {
		t.Fatal(err)
	}
	a.Ping() // key confirmation, as the endpoint does

	id, err = a.OpenStream("", 3)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := a.Write(id, r.req); n != len(r.req) || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	r.move(a, b)

	_, sid = r.events(b, 0)
	if sid == 0 {
		t.Fatal("the server saw no incoming channel")
	}
	if err := b.Accept(sid); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Read(sid, r.rd); n != len(r.req) || err != nil {
		t.Fatalf("server read: %d %v", n, err)
	}
	if n, err := b.Write(sid, r.ans); n != 1 || err != nil {
		t.Fatalf("server write: %d %v", n, err)
	}
	r.move(b, a)

	r.events(a, id)
	if n, err := a.Read(id, r.rd); n != 1 || err != nil || r.rd[0] != r.ans[0] {
		t.Fatalf("client read: %d %q %v", n, r.rd[:n], err)
	}
	return a, b, id, sid
}

// open runs the echo and closes the channel at both ends; the sessions
// are left open and idle.
func (r *lifeRig) open() (a, b *Session) {
	t := r.t
	a, b, id, sid := r.echo()
	if err := a.CloseChannel(id, 0); err != nil {
		t.Fatal(err)
	}
	r.move(a, b)

	r.events(b, sid)
	if _, err := b.Read(sid, r.rd); err != io.EOF {
		t.Fatalf("server read %v, want EOF", err)
	}
	b.CloseChannel(sid, 0)
	r.move(b, a)
	r.move(a, b)
	// The last acknowledgements go after the ACK delay.
	r.now = r.now.Add(DefaultConfig().MaxAckDelay)
	r.move(a, b)
	r.move(b, a)
	r.events(a, id)
	r.events(b, sid)
	if a.channels.Len() != 0 || b.channels.Len() != 0 {
		t.Fatalf("channels left: client %d, server %d", a.channels.Len(), b.channels.Len())
	}
	return a, b
}

// close closes the session from the client's end and lets both ends
// finish closing.
func (r *lifeRig) close(a, b *Session) {
	t := r.t
	a.Close(wire.CloseNormal, "")
	r.move(a, b)
	r.events(a, 0)
	r.events(b, 0)
	if !b.Closed() && b.Err() == nil {
		t.Fatal("the server did not see the CLOSE")
	}
	r.finish(a, b)
}

// finish lets both closing ends linger for three probe timeouts, after
// which they are gone.
func (r *lifeRig) finish(a, b *Session) {
	t := r.t
	r.now = r.now.Add(10 * time.Second)
	a.Poll(r.pkt, r.now)
	b.Poll(r.pkt, r.now)
	if !a.Closed() || !b.Closed() {
		t.Fatal("the sessions did not finish closing")
	}
}

// TestSessionLifeAllocs: a whole short session life allocates no more
// than lifeAllocBudget times in the engine, both ends together.
func TestSessionLifeAllocs(t *testing.T) {
	r := newLifeRig(t)
	for i := 0; i < 20; i++ { // warm up the process-wide pools
		r.life()
	}
	if r.packets < 5 {
		t.Fatalf("a life moved %d packets", r.packets)
	}
	allocs := testing.AllocsPerRun(200, r.life)
	t.Logf("%.1f allocations per session life (%d packets)", allocs, r.packets)
	if raceEnabled {
		return // the race detector empties sync.Pools at random
	}
	if allocs > lifeAllocBudget {
		t.Fatalf("%.1f allocations per session life, want at most %d", allocs, lifeAllocBudget)
	}
}

// TestAbruptSessionLifeAllocs: a life that ends with the channel still
// open at both ends costs no more: the session gives its stream rings
// back when it ends.
func TestAbruptSessionLifeAllocs(t *testing.T) {
	r := newLifeRig(t)
	for i := 0; i < 20; i++ {
		r.abruptLife()
	}
	allocs := testing.AllocsPerRun(200, r.abruptLife)
	t.Logf("%.1f allocations per abrupt session life (%d packets)", allocs, r.packets)
	if raceEnabled {
		return
	}
	if allocs > lifeAllocBudget {
		t.Fatalf("%.1f allocations per abrupt session life, want at most %d", allocs, lifeAllocBudget)
	}
}

// TestUnreadDataSurvivesClose: when a session ends, the stream rings it
// gives back are only those with nothing left to read: bytes received
// before the end stay readable, whichever end closed.
func TestUnreadDataSurvivesClose(t *testing.T) {
	for _, remote := range []bool{false, true} {
		a, b, w := established(t)
		id, _ := a.OpenStream("", 3)
		a.Write(id, []byte("request"))
		w.flush(a, b)
		sid := acceptAll(t, b)
		b.Write(sid, []byte("answer"))
		w.flush(b, a)
		if remote {
			b.Close(wire.CloseNormal, "")
			w.flush(b, a)
		} else {
			a.Close(wire.CloseNormal, "")
		}
		if a.Err() == nil {
			t.Fatalf("remote %v: the session is still open", remote)
		}
		rd := make([]byte, 16)
		if n, err := a.Read(id, rd); string(rd[:n]) != "answer" || err != nil {
			t.Fatalf("remote %v: read %q %v after the session ended, want the answer", remote, rd[:n], err)
		}
		if n, err := a.Read(id, rd); n != 0 || err == nil {
			t.Fatalf("remote %v: read %d %v once the answer was read, want the session's error", remote, n, err)
		}
	}
}

// BenchmarkSessionLife measures one short session life, both ends.
func BenchmarkSessionLife(b *testing.B) {
	r := newLifeRig(b)
	b.ReportAllocs()
	for b.Loop() {
		r.life()
	}
}

// idleFootprintBudget bounds the heap bytes an idle session holds after a
// short exchange: the one block New allocates (4 KiB with the default
// controller; sessionAllocCubic), with a little room for measurement
// noise. Before the session kept its state in one block (about 4,140
// bytes in ten allocations).
const idleFootprintBudget = 4096 + 32

// TestIdleFootprint: the heap an idle session holds, everything it
// allocated included, after a short exchange whose channel was closed.
func TestIdleFootprint(t *testing.T) {
	const n = 500
	r := newLifeRig(t)
	keep := make([]*Session, 0, 2*n)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.GC() // the second empties the pools' victim caches
	runtime.ReadMemStats(&m0)
	for i := 0; i < n; i++ {
		a, b := r.open()
		keep = append(keep, a, b)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(len(keep))
	runtime.KeepAlive(keep)
	t.Logf("%.0f heap bytes per idle session", per)
	if per > idleFootprintBudget {
		t.Fatalf("an idle session holds %.0f heap bytes, want at most %d", per, idleFootprintBudget)
	}
}
