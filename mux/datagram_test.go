package mux

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
	"github.com/havenproto/haven/wire"
)

// dgPayload is datagram i's content: its length and bytes derive from i.
func dgPayload(i int, size int) []byte {
	p := make([]byte, size)
	for j := range p {
		p[j] = byte(i*13 + j*7 + j>>8)
	}
	return p
}

// dgApp sends datagrams on one end and checks them on the other.
type dgApp struct {
	s      *Session
	id     uint32
	queue  [][]byte
	sent   int
	got    map[int]bool
	bad    error
	rd     []byte
	sizes  []int
	isRecv bool
}

func (d *dgApp) step(now time.Time) {
	for {
		ev, ok := d.s.PollEvent()
		if !ok {
			break
		}
		if ev.Kind&EventIncoming != 0 {
			d.id = ev.Channel
			d.s.Accept(ev.Channel)
		}
	}
	if d.isRecv && d.id != 0 {
		for {
			n, err := d.s.RecvDatagram(d.id, d.rd)
			if err != nil || n == 0 {
				break
			}
			// The first 4 bytes carry the index; the rest must match.
			i := int(d.rd[0]) | int(d.rd[1])<<8 | int(d.rd[2])<<16
			want := dgPayload(i, d.sizes[i])
			stamp(want, i)
			if !bytes.Equal(d.rd[:n], want) {
				d.bad = errors.New("datagram corrupted or mixed")
			}
			if d.got[i] {
				d.bad = errors.New("datagram delivered twice")
			}
			d.got[i] = true
		}
	}
	for d.sent < len(d.queue) {
		if err := d.s.SendDatagram(d.id, d.queue[d.sent]); err != nil {
			if err != ErrQueueFull {
				d.bad = err
			}
			break
		}
		d.sent++
	}
}

func stamp(p []byte, i int) {
	if len(p) >= 3 {
		p[0], p[1], p[2] = byte(i), byte(i>>8), byte(i>>16)
	}
}

type dgEnd struct{ d *dgApp }

func (e dgEnd) Receive(pkt []byte, now time.Time) {
	if body, ok := simOpen(pkt); ok {
		e.d.s.Receive(body, now)
	}
	e.d.step(now)
}

func (e dgEnd) Poll(b []byte, now time.Time) int {
	e.d.step(now)
	return simSeal(b, e.d.s.Poll(b, now))
}

func (e dgEnd) Deadline() time.Time { return e.d.s.Deadline() }

func runDatagrams(t *testing.T, link netsim.LinkConfig, sizes []int) (got map[int]bool) {
	t.Helper()
	net := netsim.New(11, link, link)
	a, b := pair(t, Config{DatagramQueue: 1 << 20}, Config{DatagramQueue: 1 << 20}, net.Now())
	id, err := a.OpenDatagram("telemetry", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SendDatagram(id, make([]byte, wire.MaxDatagramSize+1)); !errors.Is(err, ErrDatagramSize) {
		t.Fatalf("65,508-byte datagram: %v", err)
	}
	snd := &dgApp{s: a, id: id, sizes: sizes}
	for i, n := range sizes {
		p := dgPayload(i, n)
		stamp(p, i)
		snd.queue = append(snd.queue, p)
	}
	rcv := &dgApp{s: b, isRecv: true, got: map[int]bool{}, rd: make([]byte, 70000), sizes: sizes}
	done := func() bool { return snd.bad != nil || rcv.bad != nil || len(rcv.got) == len(sizes) }
	err = net.Run(dgEnd{snd}, dgEnd{rcv}, done, 10*time.Minute)
	if snd.bad != nil || rcv.bad != nil {
		t.Fatal(snd.bad, rcv.bad)
	}
	if snd.sent != len(sizes) {
		t.Fatalf("sent %d of %d datagrams (run: %v)", snd.sent, len(sizes), err)
	}
	return rcv.got
}

func datagramSizes() []int {
	sizes := []int{3, 4, 100, 1200, 1371, 1372, 1373, 1400, 2800, 4000, 65506, 65507}
	for i := 0; i < 200; i++ {
		sizes = append(sizes, 3+(i*7919)%wire.MaxDatagramSize)
	}
	return sizes
}

// TestDatagramsLossless: every size from tiny to 65,507 bytes arrives whole
// and byte-exact on a clean path.
func TestDatagramsLossless(t *testing.T) {
	sizes := datagramSizes()
	got := runDatagrams(t, netsim.LinkConfig{Delay: 10 * time.Millisecond}, sizes)
	if len(got) != len(sizes) {
		t.Fatalf("%d of %d datagrams arrived", len(got), len(sizes))
	}
}

// TestDatagramsLossy: under 5 % loss datagrams arrive whole or not at all
// (checked byte for byte in dgApp), small ones mostly, and the larger a
// datagram the likelier its loss; nothing is retransmitted.
func TestDatagramsLossy(t *testing.T) {
	sizes := datagramSizes()
	link := netsim.LinkConfig{Delay: 10 * time.Millisecond, Loss: 0.05}
	got := runDatagramsUntilQuiet(t, link, sizes)
	small, smallGot := 0, 0
	for i, n := range sizes {
		if n <= 1300 {
			small++
			if got[i] {
				smallGot++
			}
		}
	}
	if smallGot < small*8/10 {
		t.Fatalf("only %d of %d single-packet datagrams arrived at 5%% loss", smallGot, small)
	}
	if got[len(sizes)-1] && got[len(sizes)-2] && len(got) == len(sizes) {
		t.Fatal("every datagram arrived despite loss: retransmission?")
	}
}

// runDatagramsUntilQuiet is runDatagrams for lossy links: it stops when the
// sender has queued everything and the network has drained.
func runDatagramsUntilQuiet(t *testing.T, link netsim.LinkConfig, sizes []int) map[int]bool {
	t.Helper()
	net := netsim.New(5, link, link)
	a, b := pair(t, Config{DatagramQueue: 1 << 20}, Config{DatagramQueue: 1 << 20}, net.Now())
	id, _ := a.OpenDatagram("telemetry", 2)
	snd := &dgApp{s: a, id: id, sizes: sizes}
	for i, n := range sizes {
		p := dgPayload(i, n)
		stamp(p, i)
		snd.queue = append(snd.queue, p)
	}
	rcv := &dgApp{s: b, isRecv: true, got: map[int]bool{}, rd: make([]byte, 70000), sizes: sizes}
	var quietSince time.Time
	done := func() bool {
		if snd.bad != nil || rcv.bad != nil {
			return true
		}
		if snd.sent == len(sizes) && a.channels.Lookup(id).dgOut.len() == 0 {
			if quietSince.IsZero() {
				quietSince = net.Now()
			}
			return net.Now().Sub(quietSince) > time.Second
		}
		return false
	}
	net.Run(dgEnd{snd}, dgEnd{rcv}, done, 10*time.Minute)
	if snd.bad != nil || rcv.bad != nil {
		t.Fatal(snd.bad, rcv.bad)
	}
	if snd.sent != len(sizes) {
		t.Fatalf("sent %d of %d", snd.sent, len(sizes))
	}
	return rcv.got
}
