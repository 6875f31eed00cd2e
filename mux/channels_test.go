package mux

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// drain delivers every pending event of s to f.
func drain(s *Session, f func(Event)) {
	for {
		ev, ok := s.PollEvent()
		if !ok {
			return
		}
		if f != nil {
			f(ev)
		}
	}
}

// acceptIncoming drains s's events, accepts every channel the peer opened
// and returns the last one's id.
func acceptIncoming(s *Session) uint32 {
	var id uint32
	drain(s, func(ev Event) {
		if ev.Kind&EventIncoming != 0 {
			id = ev.Channel
			s.Accept(id)
		}
	})
	return id
}

// TestSimultaneousOpen: both sides open channels at the same moment; the
// ids never collide (odd for the initiator, even for the responder) and
// every channel carries its own data.
func TestSimultaneousOpen(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, b := pair(t, Config{}, Config{}, now)
	sh := newShuttle(a, b, now)
	var fromA, fromB []uint32
	for i := 0; i < 5; i++ {
		ia, _ := a.OpenStream("s", 3)
		ib, _ := b.OpenStream("s", 3)
		fromA, fromB = append(fromA, ia), append(fromB, ib)
		a.Write(ia, []byte{'a', byte(i)})
		b.Write(ib, []byte{'b', byte(i)})
	}
	for i, id := range fromA {
		if id%2 != 1 || fromB[i]%2 != 0 || id == fromB[i] {
			t.Fatalf("ids %d and %d", id, fromB[i])
		}
	}
	sh.round()
	got := map[*Session]map[uint32][]byte{a: {}, b: {}}
	for _, s := range []*Session{a, b} {
		drain(s, func(ev Event) {
			if ev.Kind&EventIncoming != 0 {
				s.Accept(ev.Channel)
				buf := make([]byte, 8)
				n, _ := s.Read(ev.Channel, buf)
				got[s][ev.Channel] = buf[:n]
			}
		})
	}
	for i := range fromA {
		if string(got[b][fromA[i]]) != string([]byte{'a', byte(i)}) || string(got[a][fromB[i]]) != string([]byte{'b', byte(i)}) {
			t.Fatalf("channel %d/%d: %q %q", fromA[i], fromB[i], got[b][fromA[i]], got[a][fromB[i]])
		}
	}
}

// TestResetWithCode: a RESET reaches the reader as a ChannelError with the
// code, after which the channel can be closed and released.
func TestResetWithCode(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, b := pair(t, Config{}, Config{}, now)
	sh := newShuttle(a, b, now)
	id, _ := a.OpenStream("s", 3)
	a.Write(id, make([]byte, 100_000))
	sh.round()
	peer := acceptIncoming(b)
	if err := a.ResetChannel(id, 77); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(id, []byte("x")); !errors.Is(err, ErrWriteClosed) {
		t.Fatalf("write after reset: %v", err)
	}
	for i := 0; i < 5; i++ {
		sh.round()
	}
	buf := make([]byte, 1<<20)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = b.Read(peer, buf)
	}
	var ce *ChannelError
	if !errors.As(err, &ce) || !ce.Reset || ce.Code != 77 {
		t.Fatalf("reader got %v, want reset with code 77", err)
	}
	b.CloseChannel(peer, 0)
	a.CloseChannel(id, 0)
	for i := 0; i < 20; i++ {
		sh.round()
		drain(a, nil)
		drain(b, nil)
	}
	if a.channels.Len()+b.channels.Len() != 0 {
		t.Fatalf("channels left: %d %d", a.channels.Len(), b.channels.Len())
	}
}

// TestHalfClose: each direction ends on its own; reading to EOF on one
// side does not end the other direction.
func TestHalfClose(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, b := pair(t, Config{}, Config{}, now)
	sh := newShuttle(a, b, now)
	id, _ := a.OpenStream("s", 3)
	a.Write(id, []byte("question"))
	a.CloseWrite(id)
	sh.round()
	peer := acceptIncoming(b)
	buf := make([]byte, 64)
	n, _ := b.Read(peer, buf)
	if _, err := b.Read(peer, buf); err != io.EOF || string(buf[:n]) != "question" {
		t.Fatalf("read %q then %v", buf[:n], err)
	}
	if n, err := b.Write(peer, []byte("answer")); n != 6 || err != nil {
		t.Fatalf("write after the peer's FIN: %d %v", n, err)
	}
	b.CloseWrite(peer)
	sh.round()
	sh.round()
	n, _ = a.Read(id, buf)
	if _, err := a.Read(id, buf); err != io.EOF || string(buf[:n]) != "answer" {
		t.Fatalf("A read %q then %v", buf[:n], err)
	}
}

// TestWindowAutoTuning: over a long fat path the receive windows grow from
// their initial size toward the configured maximum.
func TestWindowAutoTuning(t *testing.T) {
	cfg := Config{ChannelWindow: 64 << 10, MaxChannelWindow: 8 << 20, SessionWindow: 128 << 10, MaxSessionWindow: 16 << 20}
	link := bottleneck()
	link.Delay = 50 * time.Millisecond
	net := newNet(link)
	a, b := pair(t, cfg, cfg, net.Now())
	appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
	appB.expect["bulk"] = 32 * mib
	appA.send("bulk", 3, 32*mib)
	if err := net.Run(simEnd{appA}, simEnd{appB}, allDone(appA, appB), time.Hour); err != nil || appA.err != nil || appB.err != nil {
		t.Fatal(err, appA.err, appB.err)
	}
	var win int
	for c := range b.channels.All() {
		win = c.recv.Window()
	}
	t.Logf("session window grew to %d bytes, channel window to %d", b.recvWindow, win)
	if b.recvWindow <= 128<<10 {
		t.Fatalf("session window stayed at %d", b.recvWindow)
	}
	if win != 0 && win <= 64<<10 {
		t.Fatalf("channel window stayed at %d", win)
	}
}

// TestSpinBit: the initiator inverts the last spin value it received and
// the responder echoes it, so the bit flips once per round trip.
func TestSpinBit(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, b := pair(t, Config{}, Config{}, now)
	buf := make([]byte, 2048)
	var seen []bool
	id, _ := a.OpenStream("s", 3)
	for i := 0; i < 6; i++ {
		a.Write(id, []byte("ping"))
		n := a.Poll(buf, now)
		var h wire.Header
		h.Parse(buf[:n])
		seen = append(seen, h.Flags&wire.FlagSpin != 0)
		b.Receive(buf[:n], now)
		drain(b, func(ev Event) {
			if ev.Kind&EventIncoming != 0 {
				b.Accept(ev.Channel)
			}
		})
		now = now.Add(30 * time.Millisecond)
		if m := b.Poll(buf, now); m > 0 {
			a.Receive(buf[:m], now)
		}
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] == seen[i-1] {
			t.Fatalf("spin bit did not flip between round trips: %v", seen)
		}
	}
}
