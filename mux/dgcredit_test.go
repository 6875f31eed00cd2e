package mux

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
	"github.com/havenproto/haven/wire"
)

// creditApp is one end of a datagram flow-control test: the sender queues
// total numbered datagrams as fast as SendDatagram takes them; the
// receiver reads at most perTick of them per tick of simulated time, like
// an application slower than the network, and checks each.
type creditApp struct {
	s  *Session
	id uint32

	// Sender.
	total, sent, full int
	payload           []byte

	// Receiver.
	reader   bool
	perTick  int
	tick     time.Duration
	nextRead time.Time
	got      map[uint32]bool
	maxHeld  int // most datagrams ever waiting in the engine's queue
	rd       []byte
	bad      error
}

func (c *creditApp) step(now time.Time) {
	drain(c.s, func(ev Event) {
		if ev.Kind&EventIncoming != 0 {
			c.id = ev.Channel
			c.s.Accept(ev.Channel)
		}
	})
	if c.reader && c.id != 0 {
		if ch := c.s.channels.Lookup(c.id); ch != nil {
			c.maxHeld = max(c.maxHeld, ch.dgIn.len())
		}
		if !now.Before(c.nextRead) {
			for i := 0; i < c.perTick; i++ {
				n, err := c.s.RecvDatagram(c.id, c.rd)
				if err != nil || n == 0 {
					break
				}
				i := binary.LittleEndian.Uint32(c.rd)
				if n != len(c.payload) || c.got[i] {
					c.bad = errors.New("datagram corrupted or delivered twice")
				}
				c.got[i] = true
			}
			c.nextRead = now.Add(c.tick)
		}
	}
	for !c.reader && c.sent < c.total {
		binary.LittleEndian.PutUint32(c.payload, uint32(c.sent))
		err := c.s.SendDatagram(c.id, c.payload)
		if err == ErrQueueFull {
			c.full++
			break
		}
		if err != nil {
			c.bad = err
			break
		}
		c.sent++
	}
}

func (c *creditApp) Receive(pkt []byte, now time.Time) {
	if body, ok := simOpen(pkt); ok {
		c.s.Receive(body, now)
	}
	c.step(now)
}

func (c *creditApp) Poll(b []byte, now time.Time) int {
	c.step(now)
	return simSeal(b, c.s.Poll(b, now))
}

// Deadline adds the reader's own timer while datagrams wait for it.
func (c *creditApp) Deadline() time.Time {
	d := c.s.Deadline()
	if c.reader && c.id != 0 && c.s.NextDatagramLen(c.id) >= 0 && (d.IsZero() || c.nextRead.Before(d)) {
		d = c.nextRead
	}
	return d
}

// runCredit sends total 1,200-byte datagrams from a to a reader on b that
// takes perTick per millisecond, and returns both ends when the reader has
// them all (or the run stops).
func runCredit(t *testing.T, link netsim.LinkConfig, total, perTick int, done func(snd, rcv *creditApp) bool) (*creditApp, *creditApp, *netsim.Network) {
	t.Helper()
	net := netsim.New(3, link, link)
	a, b := pair(t, Config{}, Config{}, net.Now())
	id, err := a.OpenDatagram("telemetry", 3)
	if err != nil {
		t.Fatal(err)
	}
	snd := &creditApp{s: a, id: id, total: total, payload: make([]byte, 1200)}
	rcv := &creditApp{s: b, reader: true, perTick: perTick, tick: time.Millisecond, got: map[uint32]bool{}, rd: make([]byte, 2048), payload: snd.payload}
	stop := func() bool { return snd.bad != nil || rcv.bad != nil || done(snd, rcv) }
	net.Run(snd, rcv, stop, time.Minute)
	if snd.bad != nil || rcv.bad != nil {
		t.Fatal(snd.bad, rcv.bad)
	}
	return snd, rcv, net
}

// TestDatagramCreditSlowReader: a sender much faster than the receiving
// application loses nothing on a clean path: the receiver's credit holds
// it back (SendDatagram reports a full queue), the receive queue never
// holds more than the window, and the transfer runs at the reader's pace.
func TestDatagramCreditSlowReader(t *testing.T) {
	const total, perMs = 5000, 10
	snd, rcv, net := runCredit(t, netsim.LinkConfig{Delay: 5 * time.Millisecond}, total, perMs,
		func(_, rcv *creditApp) bool { return len(rcv.got) == total })
	if len(rcv.got) != total {
		t.Fatalf("%d of %d datagrams arrived on a clean path", len(rcv.got), total)
	}
	st := rcv.s.Stats()
	if st.DatagramsDropped != 0 {
		t.Fatalf("the receiver dropped %d datagrams: the sender overran it", st.DatagramsDropped)
	}
	if snd.full == 0 {
		t.Fatal("SendDatagram never reported a full queue: no back-pressure reached the sender")
	}
	w := rcv.s.dgWindow(rcv.s.channels.Lookup(rcv.id))
	if rcv.maxHeld > w+wire.InitialDatagramLimit {
		t.Fatalf("the receive queue held %d datagrams, window %d", rcv.maxHeld, w)
	}
	// 5,000 datagrams at 10 per ms take 500 ms; credit round trips may add
	// a little, not stall the flow.
	if el := net.Now().Sub(netsim.Start); el > 700*time.Millisecond {
		t.Fatalf("took %v at the reader's pace of 500 ms", el)
	}
}

// TestDatagramCreditBlackout: a blackout swallows whole windows of
// datagrams and the sender's BLOCKED; afterwards the flow resumes (the
// repeated BLOCKED tells the receiver those sequence numbers are gone),
// and nothing is retransmitted.
func TestDatagramCreditBlackout(t *testing.T) {
	const total = 3000
	link := netsim.LinkConfig{Delay: 5 * time.Millisecond,
		Blackouts: []netsim.Window{{Start: 20 * time.Millisecond, End: 400 * time.Millisecond}}}
	snd, rcv, net := runCredit(t, link, total, 1000, func(snd, rcv *creditApp) bool {
		return rcv.got[total-1] || net0(snd) > 30*time.Second
	})
	if snd.sent != total || !rcv.got[total-1] {
		t.Fatalf("sent %d of %d, last arrived %v: the flow did not resume after the blackout", snd.sent, total, rcv.got[total-1])
	}
	if len(rcv.got) == total {
		t.Fatal("every datagram arrived despite a 380 ms blackout: retransmission?")
	}
	if c := snd.s.channels.Lookup(snd.id); c == nil || !c.dgBlockedSent {
		t.Fatal("the sender never reported BLOCKED: the blackout did not exhaust its credit")
	}
	if el := net.Now().Sub(netsim.Start); el > 5*time.Second {
		t.Fatalf("the flow took %v to resume", el)
	}
}

// net0 is the simulated time an end's session has seen.
func net0(c *creditApp) time.Duration { return c.s.now.Sub(netsim.Start) }

// TestHostileDatagramBeyondLimit: a datagram past the granted limit closes
// the session with FLOW_CONTROL_ERROR.
func TestHostileDatagramBeyondLimit(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, _ := pair(t, Config{}, Config{}, now)
	open := &wire.Open{Type: wire.ChannelDatagram, Service: []byte("x")}
	limit := uint32(max(wire.InitialDatagramLimit, a.cfg.DatagramQueue/wire.MaxDatagramSize)) // nothing received yet: the largest size assumed
	err := a.Receive(hostilePacket(a, 2, 0, open, &wire.Datagram{Seq: limit, Data: []byte("x")}), now)
	closedWith(t, a, err, wire.CloseFlowControl)
}

// TestHostileDatagramBlockedBeyondLimit: a BLOCKED claiming a limit we
// never granted is a protocol violation.
func TestHostileDatagramBlockedBeyondLimit(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, _ := pair(t, Config{}, Config{}, now)
	open := &wire.Open{Type: wire.ChannelDatagram, Service: []byte("x")}
	err := a.Receive(hostilePacket(a, 2, 0, open, &wire.Blocked{Limit: 1 << 40}), now)
	closedWith(t, a, err, wire.CloseProtocol)
}

// TestDatagramCreditHeld: TakeDatagram holds credit until
// ReleaseDatagrams; a peer blocked meanwhile resumes once it is released.
func TestDatagramCreditHeld(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, b := pair(t, Config{}, Config{}, now)
	sh := newShuttle(a, b, now)
	id, _ := a.OpenDatagram("d", 3)
	p := make([]byte, 1200)
	for i := 0; i < 2000; i++ {
		if a.SendDatagram(id, p) != nil {
			break
		}
	}
	var peer uint32
	rd := make([]byte, 2048)
	taken := 0
	for r := 0; r < 50; r++ {
		sh.round()
		drain(b, func(ev Event) {
			if ev.Kind&EventIncoming != 0 {
				peer = ev.Channel
				b.Accept(peer)
			}
		})
		for peer != 0 && b.NextDatagramLen(peer) >= 0 {
			b.TakeDatagram(peer, rd)
			taken++
		}
	}
	c := b.channels.Lookup(peer)
	if c == nil || taken == 0 || taken > int(c.recvLimit) || uint64(taken) < c.recvLimit-uint64(wire.InitialDatagramLimit) {
		t.Fatalf("took %d datagrams without releasing them; granted %d", taken, c.recvLimit)
	}
	before := taken
	if !b.ReleaseDatagrams(peer, taken) {
		t.Fatal("releasing a whole window queued no MAX_DATA")
	}
	for r := 0; r < 50; r++ {
		sh.round()
		for b.NextDatagramLen(peer) >= 0 {
			b.TakeDatagram(peer, rd)
			taken++
		}
	}
	if taken <= before {
		t.Fatal("the sender did not resume after the credit was released")
	}
	if st := b.Stats(); st.DatagramsDropped != 0 {
		t.Fatalf("%d datagrams dropped", st.DatagramsDropped)
	}
}

// TestDatagramAllocs: a steady datagram flow, both ends, with credit
// going back and forth, allocates nothing.
func TestDatagramAllocs(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, b := pair(t, Config{}, Config{}, now)
	sh := newShuttle(a, b, now)
	id, _ := a.OpenDatagram("d", 3)
	p := make([]byte, 1200)
	rd := make([]byte, 2048)
	var peer uint32
	got := 0
	pump := func() {
		for i := 0; i < 64; i++ {
			if a.SendDatagram(id, p) != nil {
				break
			}
		}
		sh.round()
		drain(b, func(ev Event) {
			if ev.Kind&EventIncoming != 0 {
				peer = ev.Channel
				b.Accept(peer)
			}
		})
		for peer != 0 {
			n, _ := b.RecvDatagram(peer, rd)
			if n == 0 {
				break
			}
			got++
		}
		drain(a, nil)
	}
	for i := 0; i < 100; i++ {
		pump()
	}
	before := got
	allocs := testing.AllocsPerRun(200, pump)
	if got-before < 5000 {
		t.Fatalf("only %d datagrams moved in steady state", got-before)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per round of ~%d datagrams, want 0", allocs, (got-before)/201)
	}
}
