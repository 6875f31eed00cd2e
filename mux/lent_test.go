package mux

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
)

// lentCounts counts the references a receiving session holds on packet
// buffers (ReceiveLent).
type lentCounts struct{ holds, live int }

// lentPacket is a received packet's buffer lent to the engine. Once its
// last reference is released (or at once, if none was taken) it is
// scribbled over, as a reused pool buffer would be, so stream data read
// from it afterwards fails the pattern check.
type lentPacket struct {
	b    []byte
	refs int
	c    *lentCounts
	done bool
}

func (p *lentPacket) Hold() BufferRef {
	p.refs++
	p.c.holds++
	p.c.live++
	return p
}

func (p *lentPacket) Release() {
	if p.refs == 0 {
		panic("a buffer reference released twice")
	}
	p.refs--
	p.c.live--
	if p.refs == 0 && p.done {
		clear(p.b)
	}
}

// lentEnd is simEnd receiving through ReceiveLent, each packet in a
// buffer of its own.
type lentEnd struct {
	a *peerApp
	c *lentCounts
}

func (e lentEnd) Receive(pkt []byte, now time.Time) {
	body, ok := simOpen(pkt)
	if !ok {
		return
	}
	p := &lentPacket{b: append([]byte(nil), body...), c: e.c}
	err := e.a.s.ReceiveLent(p.b, 0, now, p)
	p.done = true
	if p.refs == 0 {
		clear(p.b)
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		e.a.fail(fmt.Errorf("%s: protocol error: %w", e.a.name, err))
	}
	e.a.step(now)
}

func (e lentEnd) Poll(b []byte, now time.Time) int { return simEnd{e.a}.Poll(b, now) }
func (e lentEnd) Deadline() time.Time              { return e.a.s.Deadline() }

// TestReceiveLent: a receiver that lends its packet buffers to the engine
// gets every byte of a transfer through loss, reordering, duplication and
// corruption, though each buffer is overwritten as soon as the engine lets
// go of it; the engine held buffers (in-order data was not copied) and
// released every reference by the end.
func TestReceiveLent(t *testing.T) {
	for _, tc := range transferCases() {
		switch tc.name {
		case "loss0", "loss2", "reorder-dup", "corrupt":
		default:
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			const size = 4 * mib
			net := netsim.New(11, tc.link, tc.link)
			a, b := pair(t, Config{}, Config{}, net.Now())
			appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
			appB.expect["bulk"] = size
			appA.send("bulk", 3, size)
			var c lentCounts
			err := net.Run(simEnd{appA}, lentEnd{appB, &c}, allDone(appA, appB), tc.limit)
			for _, app := range []*peerApp{appA, appB} {
				if app.err != nil {
					t.Fatal(app.err)
				}
			}
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			for _, j := range appB.in {
				if !j.eof || j.read != size {
					t.Fatalf("B read %d of %d bytes", j.read, size)
				}
			}
			// Out of order data goes to the ring until the reader has
			// drained it, so reordering leaves fewer packets lent.
			want := int(b.Stats().PacketsReceived) / 2
			if tc.name == "reorder-dup" {
				want /= 10
			}
			if c.holds < want {
				t.Fatalf("the engine held %d buffers for a %d-packet transfer, want %d: in-order data was copied", c.holds, b.Stats().PacketsReceived, want)
			}
			if c.live != 0 {
				t.Fatalf("%d buffer references not released after the stream was read", c.live)
			}
		})
	}
}
