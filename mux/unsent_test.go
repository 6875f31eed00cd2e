package mux

import (
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
)

// TestUnsentBoundAPI: with several channels queued, a Write takes no more
// than the send buffer's share of each (unsentCap), and nothing more until
// half of that was sent; one stream alone fills its whole send buffer.
func TestUnsentBoundAPI(t *testing.T) {
	now := netsim.Start
	a, _ := pair(t, Config{}, Config{}, now)
	sendBuf := a.cfg.SendBuffer
	p := make([]byte, sendBuf)

	one, err := a.OpenStream("one", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := a.Write(one, p); err != nil || n != sendBuf {
		t.Fatalf("one stream: Write took %d, %v; want the whole buffer, %d", n, err, sendBuf)
	}

	b, _ := pair(t, Config{}, Config{}, now)
	ids := make([]uint32, 8)
	for i := range ids {
		if ids[i], err = b.OpenStream("eight", 0); err != nil {
			t.Fatal(err)
		}
	}
	limit := max(sendBuf/len(ids), minUnsentCap)
	if got := b.unsentCap(b.channels.Lookup(ids[0])); got != limit {
		t.Fatalf("eight channels queued: unsentCap %d, want %d", got, limit)
	}
	n, err := b.Write(ids[0], p)
	if err != nil || n != limit {
		t.Fatalf("eight streams: Write took %d, %v; want %d", n, err, limit)
	}
	if n, _ := b.Write(ids[0], p); n != 0 {
		t.Fatalf("a second Write took %d bytes with all of the bound unsent", n)
	}
	// A few packets go out (the initial window): less than half of the
	// bound, so the writer stays held back.
	pkt := make([]byte, 2048)
	for i := 0; i < 4 && b.Poll(pkt, now) > 0; i++ {
	}
	if u := b.channels.Lookup(ids[0]).send.Unsent(); u <= limit/2 || u == limit {
		t.Fatalf("unsent %d after a few packets; want between %d and %d", u, limit/2, limit)
	}
	if n, _ := b.Write(ids[0], p); n != 0 {
		t.Fatalf("Write took %d bytes above half of the bound", n)
	}
	// ReadFrom's reservation obeys the same bound.
	if room, err := b.ReserveWrite(ids[1], sendBuf); err != nil || len(room) != limit {
		t.Fatalf("ReserveWrite offered %d, %v; want %d", len(room), err, limit)
	}
	if n, err := b.CommitWrite(ids[1], limit); err != nil || n != limit {
		t.Fatalf("CommitWrite %d, %v", n, err)
	}
	if room, _ := b.ReserveWrite(ids[1], sendBuf); len(room) != 0 {
		t.Fatalf("ReserveWrite offered %d with the bound unsent", len(room))
	}
}

// TestUnsentBoundWake: a writer held back by the bound hears
// EventWritable as soon as sending makes room, with no ACK needed: here
// the other channels send their OPENs and leave the queue, so the held
// stream is alone and unbounded when its next packet is built.
func TestUnsentBoundWake(t *testing.T) {
	now := netsim.Start
	s, _ := pair(t, Config{}, Config{}, now)
	ids := make([]uint32, 8)
	for i := range ids {
		var err error
		if ids[i], err = s.OpenStream("eight", 0); err != nil {
			t.Fatal(err)
		}
	}
	s.TakeWake()
	for {
		if _, ok := s.PollEvent(); !ok {
			break
		}
	}
	p := make([]byte, s.cfg.SendBuffer)
	n, _ := s.Write(ids[0], p)
	if n >= len(p) {
		t.Fatalf("Write took %d of %d bytes: not bounded", n, len(p))
	}
	pkt := make([]byte, 2048)
	writable := false
	for i := 0; i < 16 && !writable && s.Poll(pkt, now) > 0; i++ {
		for {
			ev, ok := s.PollEvent()
			if !ok {
				break
			}
			writable = writable || ev.Channel == ids[0] && ev.Kind&EventWritable != 0
		}
	}
	if !writable {
		t.Fatal("no EventWritable for the held stream once it was alone")
	}
	if n, _ := s.Write(ids[0], p); n == 0 {
		t.Fatal("the woken writer found no room")
	}
}

// TestUnsentBoundTransfer: eight streams share a session whose writers
// write only when the channel says it is writable again (as the endpoint's
// do). Every byte arrives, so the bound's wake-up is never missed, and no
// stream keeps more than its share unsent while all eight are busy.
func TestUnsentBoundTransfer(t *testing.T) {
	link := netsim.LinkConfig{Delay: 5 * time.Millisecond, Bandwidth: 400_000_000, QueueBytes: 1 << 20, MTU: ethernetMTU}
	net := netsim.New(11, link, link)
	a, b := pair(t, Config{}, Config{}, net.Now())
	appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
	appA.strict = true
	const streams, size = 8, 4 * mib
	share := max(a.cfg.SendBuffer/streams, minUnsentCap)
	var jobs []*streamJob
	for i := 0; i < streams; i++ {
		svc := string(rune('a' + i))
		appB.expect[svc] = size
		jobs = append(jobs, appA.send(svc, 0, size))
	}
	var most, checks int
	appA.onEvent = func(app *peerApp, _ Event) {
		// Once every stream wrote twice its buffer, what a writer queued
		// before the others had opened has been sent.
		busy := 0
		for _, j := range jobs {
			if j.written >= 2*uint64(app.s.cfg.SendBuffer) && j.written < j.size {
				busy++
			}
		}
		if busy < streams {
			return
		}
		for _, j := range jobs {
			if c := app.s.channels.Lookup(j.id); c != nil && c.send != nil {
				most = max(most, c.send.Unsent())
				checks++
			}
		}
	}
	err := net.Run(simEnd{appA}, simEnd{appB}, allDone(appA, appB), time.Hour)
	for _, app := range []*peerApp{appA, appB} {
		if app.err != nil {
			t.Fatal(app.err)
		}
	}
	if err != nil {
		t.Fatalf("run: %v (held %v)", err, appA.held)
	}
	for _, j := range appB.in {
		if !j.eof || j.read != size {
			t.Fatalf("B read %d of %d bytes on channel %d", j.read, uint64(size), j.id)
		}
	}
	if checks == 0 {
		t.Fatal("never saw all eight streams busy")
	}
	if most > share {
		t.Fatalf("a stream had %d bytes unsent with eight busy; its share is %d", most, share)
	}
}
