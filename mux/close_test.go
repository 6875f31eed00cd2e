package mux

import (
	"errors"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
	"github.com/havenproto/haven/wire"
)

// quiet is an endpoint with no application: only the session's own timers.
type quiet struct{ s *Session }

func (q quiet) Receive(pkt []byte, now time.Time) {
	if body, ok := simOpen(pkt); ok {
		q.s.Receive(body, now)
	}
	for {
		if _, ok := q.s.PollEvent(); !ok {
			return
		}
	}
}
func (q quiet) Poll(b []byte, now time.Time) int { return simSeal(b, q.s.Poll(b, now)) }
func (q quiet) Deadline() time.Time              { return q.s.Deadline() }

// TestKeepAlive: an idle session with a 3 s idle timeout stays open for a
// simulated minute, kept alive by a few PINGs.
func TestKeepAlive(t *testing.T) {
	link := netsim.LinkConfig{Delay: 20 * time.Millisecond, MTU: ethernetMTU}
	net := netsim.New(41, link, link)
	cfg := Config{IdleTimeout: 3 * time.Second}
	a, b := pair(t, cfg, cfg, net.Now())
	err := net.Run(quiet{a}, quiet{b}, func() bool { return a.Err() != nil || b.Err() != nil }, time.Minute)
	if !errors.Is(err, netsim.ErrTimeLimit) || a.Err() != nil || b.Err() != nil {
		t.Fatalf("run %v; sessions %v / %v", err, a.Err(), b.Err())
	}
	sent := a.Stats().PacketsSent + b.Stats().PacketsSent
	if sent < 20 || sent > 200 {
		t.Fatalf("%d packets in an idle minute: want keepalives, not a flood", sent)
	}
}

// TestIdleTimeout: when the path goes dark for longer than the idle
// timeout, both sides close with CloseIdle, silently.
func TestIdleTimeout(t *testing.T) {
	link := netsim.LinkConfig{Delay: 20 * time.Millisecond, MTU: ethernetMTU, Blackouts: []netsim.Window{{Start: time.Second, End: time.Hour}}}
	net := netsim.New(43, link, link)
	cfg := Config{IdleTimeout: 3 * time.Second}
	a, b := pair(t, cfg, cfg, net.Now())
	net.Run(quiet{a}, quiet{b}, func() bool { return a.Closed() && b.Closed() }, time.Minute)
	for _, s := range []*Session{a, b} {
		var ce *CloseError
		if !errors.As(s.Err(), &ce) || ce.Code != wire.CloseIdle || !s.Closed() {
			t.Fatalf("session error %v, closed %v; want idle timeout", s.Err(), s.Closed())
		}
	}
	if at := net.Now().Sub(netsim.Start); at > 6*time.Second {
		t.Fatalf("closed after %v; idle timeout is 3 s after the last packet", at)
	}
}

// TestAbruptClose: Close with a code reaches the peer, which fails its
// channels with the code and reason.
func TestAbruptClose(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, b := pair(t, Config{}, Config{}, now)
	sh := newShuttle(a, b, now)
	id, _ := a.OpenStream("x", 3)
	a.Write(id, []byte("hello"))
	sh.round()
	peerCh := acceptIncoming(b)
	a.Close(wire.CloseRestarting, "restarting")
	for i := 0; i < 5; i++ {
		sh.round()
	}
	var ce *CloseError
	if !errors.As(b.Err(), &ce) || !ce.Remote || ce.Code != wire.CloseRestarting || ce.Reason != "restarting" {
		t.Fatalf("peer sees %v", b.Err())
	}
	sawClosed := false
	for {
		ev, ok := b.PollEvent()
		if !ok {
			break
		}
		sawClosed = sawClosed || ev.Channel == 0 && ev.Kind&EventSessionClosed != 0
	}
	if !sawClosed {
		t.Fatal("no EventSessionClosed")
	}
	buf := make([]byte, 16)
	b.Read(peerCh, buf) // buffered "hello" may still be read
	if _, err := b.Write(peerCh, []byte("x")); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := a.OpenStream("y", 3); !errors.As(err, &ce) {
		t.Fatalf("open after close: %v", err)
	}
	// Closing sessions stop after the drain period.
	for i := 0; i < 5000 && !(a.Closed() && b.Closed()); i++ {
		sh.round()
	}
	if !a.Closed() || !b.Closed() {
		t.Fatal("sessions never finished closing")
	}
}

// TestDrain: Drain refuses new channels, lets open ones finish, then
// closes with CloseNormal.
func TestDrain(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, b := pair(t, Config{}, Config{}, now)
	sh := newShuttle(a, b, now)
	id, _ := a.OpenStream("x", 3)
	a.Write(id, []byte("last words"))
	a.CloseWrite(id)
	sh.round()
	peerCh := acceptIncoming(b)
	b.Drain()
	late, _ := a.OpenStream("late", 3)
	sh.round()
	sh.round()
	if _, err := a.Read(late, make([]byte, 8)); err == nil {
		t.Fatal("a channel opened during drain was not refused")
	} else if ce := new(ChannelError); !errors.As(err, &ce) || !ce.Refused || ce.Code != wire.RefuseShutdown {
		t.Fatalf("late channel: %v", err)
	}
	if b.Err() != nil {
		t.Fatal("closed before its channel finished")
	}
	buf := make([]byte, 64)
	n, _ := b.Read(peerCh, buf)
	if string(buf[:n]) != "last words" {
		t.Fatalf("read %q", buf[:n])
	}
	b.Read(peerCh, buf) // EOF
	b.CloseChannel(peerCh, 0)
	a.CloseChannel(id, 0)
	for i := 0; i < 200 && b.Err() == nil; i++ {
		sh.round()
		for _, s := range []*Session{a, b} {
			for {
				if _, ok := s.PollEvent(); !ok {
					break
				}
			}
		}
	}
	var ce *CloseError
	if !errors.As(b.Err(), &ce) || ce.Code != wire.CloseNormal {
		t.Fatalf("after drain: %v", b.Err())
	}
}
