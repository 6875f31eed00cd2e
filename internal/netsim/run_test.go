package netsim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"
)

// pinger sends ping i+1 when the echo of ping i comes back, n times.
type pinger struct {
	n, sent, got int
	waiting      bool
}

func (p *pinger) Receive(pkt []byte, _ time.Time) {
	if binary.BigEndian.Uint64(pkt) == uint64(p.got) {
		p.got++
		p.waiting = false
	}
}

func (p *pinger) Poll(buf []byte, _ time.Time) int {
	if p.waiting || p.sent == p.n {
		return 0
	}
	p.waiting = true
	p.sent++
	return len(fill(buf, uint64(p.sent-1), 100))
}

func (p *pinger) Deadline() time.Time { return time.Time{} }

// echoer sends back every packet it receives.
type echoer struct{ queue [][]byte }

func (e *echoer) Receive(pkt []byte, _ time.Time) { e.queue = append(e.queue, bytes.Clone(pkt)) }

func (e *echoer) Poll(buf []byte, _ time.Time) int {
	if len(e.queue) == 0 {
		return 0
	}
	k := copy(buf, e.queue[0])
	e.queue = e.queue[1:]
	return k
}

func (e *echoer) Deadline() time.Time { return time.Time{} }

func TestRunPingPong(t *testing.T) {
	ms := time.Millisecond
	n := New(1, LinkConfig{Delay: 10 * ms}, LinkConfig{Delay: 10 * ms})
	a, b := &pinger{n: 100}, &echoer{}
	if err := n.Run(a, b, func() bool { return a.got == a.n }, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, want := n.Now(), Start.Add(100*20*ms); !got.Equal(want) {
		t.Errorf("finished at %v, want %v", got, want)
	}
	// Without done, the exchange ends by itself when nothing is left.
	n2 := New(1, LinkConfig{Delay: 10 * ms}, LinkConfig{Delay: 10 * ms})
	a2 := &pinger{n: 100}
	if err := n2.Run(a2, &echoer{}, nil, time.Minute); !errors.Is(err, ErrStalled) || a2.got != 100 {
		t.Errorf("Run = %v with %d echoes", err, a2.got)
	}
}

// Toy reliable protocol. Data: 'D', seq u32, payload, crc32. Ack: 'A', seq
// u32, crc32. The sender paces packets every gap and, every rto, queues
// again those sent more than rto ago and still unacknowledged.
const (
	arqGap = 500 * time.Microsecond
	arqRTO = 100 * time.Millisecond
)

func arqPayload(seq int) []byte {
	p := make([]byte, 1+(seq*37)%980) // fits the 1000-byte MTU
	for i := range p {
		p[i] = byte(seq*7 + i*3)
	}
	return p
}

func seal(buf []byte, kind byte, seq int, payload []byte) int {
	buf[0] = kind
	binary.BigEndian.PutUint32(buf[1:], uint32(seq))
	k := 5 + copy(buf[5:], payload)
	binary.BigEndian.PutUint32(buf[k:], crc32.ChecksumIEEE(buf[:k]))
	return k + 4
}

// open checks the checksum and returns kind, seq and payload.
func open(pkt []byte) (byte, int, []byte, bool) {
	if len(pkt) < 9 {
		return 0, 0, nil, false
	}
	k := len(pkt) - 4
	if crc32.ChecksumIEEE(pkt[:k]) != binary.BigEndian.Uint32(pkt[k:]) {
		return 0, 0, nil, false
	}
	return pkt[0], int(binary.BigEndian.Uint32(pkt[1:])), pkt[5:k], true
}

type arqSender struct {
	n        int
	acked    []bool
	nacked   int
	lastSent []time.Time
	queued   []bool
	queue    []int
	nextSend time.Time // pacing
	nextScan time.Time // retransmission timer
	probed   bool      // sent the oversized probe the MTU drops
}

func newARQSender(n int) *arqSender {
	s := &arqSender{n: n, acked: make([]bool, n), lastSent: make([]time.Time, n), queued: make([]bool, n)}
	for i := range n {
		s.queue = append(s.queue, i)
		s.queued[i] = true
	}
	s.nextScan = Start.Add(arqRTO)
	return s
}

func (s *arqSender) Receive(pkt []byte, _ time.Time) {
	kind, seq, _, ok := open(pkt)
	if ok && kind == 'A' && seq < s.n && !s.acked[seq] {
		s.acked[seq] = true
		s.nacked++
	}
}

func (s *arqSender) Poll(buf []byte, now time.Time) int {
	if s.nacked == s.n {
		return 0
	}
	if !s.probed {
		s.probed = true
		buf[0] = 'P'
		return 1400
	}
	if !now.Before(s.nextScan) {
		for seq := range s.n {
			if !s.acked[seq] && !s.queued[seq] && !now.Before(s.lastSent[seq].Add(arqRTO)) {
				s.queue = append(s.queue, seq)
				s.queued[seq] = true
			}
		}
		s.nextScan = now.Add(arqRTO)
	}
	for len(s.queue) > 0 && !now.Before(s.nextSend) {
		seq := s.queue[0]
		s.queue = s.queue[1:]
		s.queued[seq] = false
		if s.acked[seq] {
			continue
		}
		s.lastSent[seq] = now
		s.nextSend = now.Add(arqGap)
		return seal(buf, 'D', seq, arqPayload(seq))
	}
	return 0
}

func (s *arqSender) Deadline() time.Time {
	switch {
	case s.nacked == s.n:
		return time.Time{}
	case len(s.queue) > 0 && s.nextSend.Before(s.nextScan):
		return s.nextSend
	default:
		return s.nextScan
	}
}

type arqReceiver struct {
	data [][]byte
	have int
	acks []int
}

func (r *arqReceiver) Receive(pkt []byte, _ time.Time) {
	kind, seq, payload, ok := open(pkt)
	if !ok || kind != 'D' || seq >= len(r.data) {
		return // corrupted
	}
	if r.data[seq] == nil {
		r.data[seq] = bytes.Clone(payload)
		r.have++
	}
	r.acks = append(r.acks, seq)
}

func (r *arqReceiver) Poll(buf []byte, _ time.Time) int {
	if len(r.acks) == 0 {
		return 0
	}
	seq := r.acks[0]
	r.acks = r.acks[1:]
	return seal(buf, 'A', seq, nil)
}

func (r *arqReceiver) Deadline() time.Time { return time.Time{} }

// harsh is a path with every impairment at once.
func harsh() (LinkConfig, LinkConfig) {
	data := LinkConfig{
		Delay: 25 * time.Millisecond, Jitter: 2 * time.Millisecond,
		Reorder: 0.02, ReorderDelay: 7 * time.Millisecond,
		Loss: 0.05, BurstEnter: 0.01, BurstExit: 0.3,
		Duplicate: 0.02, Corrupt: 0.02,
		Bandwidth: 20_000_000, QueueBytes: 40_000, MTU: 1000,
		Blackouts: []Window{{300 * time.Millisecond, 700 * time.Millisecond}},
	}
	acks := LinkConfig{Delay: 25 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.1, Duplicate: 0.05, Corrupt: 0.05}
	return data, acks
}

// transfer runs the toy protocol over the harsh path and returns the
// hash of the full event trace.
func transfer(t *testing.T, seed uint64, useDone bool) [32]byte {
	const count = 2000
	data, acks := harsh()
	n := New(seed, data, acks)
	h := sha256.New()
	var rec [17]byte
	n.Tap = func(dir int, pkt []byte, at time.Time, ev Event) {
		rec[0] = byte(dir)<<4 | byte(ev)
		binary.BigEndian.PutUint64(rec[1:], uint64(at.UnixNano()))
		binary.BigEndian.PutUint64(rec[9:], uint64(len(pkt)))
		h.Write(rec[:])
		h.Write(pkt)
	}
	s, r := newARQSender(count), &arqReceiver{data: make([][]byte, count)}
	done := func() bool { return s.nacked == count }
	if !useDone {
		done = nil
	}
	err := n.Run(s, r, done, 10*time.Minute)
	switch {
	case useDone && err != nil:
		t.Fatalf("seed %d: Run = %v", seed, err)
	case !useDone && !errors.Is(err, ErrStalled):
		t.Fatalf("seed %d: Run = %v, want ErrStalled once the transfer went quiet", seed, err)
	}
	if r.have != count {
		t.Fatalf("seed %d: receiver has %d of %d", seed, r.have, count)
	}
	for seq, p := range r.data {
		if !bytes.Equal(p, arqPayload(seq)) {
			t.Fatalf("seed %d: packet %d differs", seed, seq)
		}
	}
	st := n.Stats(0)
	if st.Lost == 0 || st.BurstLost == 0 || st.Duplicated == 0 || st.Corrupted == 0 || st.MTUDropped == 0 || st.BlackoutDropped == 0 {
		t.Errorf("seed %d: some impairment never happened: %+v", seed, st)
	}
	if !useDone {
		checkIdentity(t, st)
		checkIdentity(t, n.Stats(1))
	}
	return [32]byte(h.Sum(nil))
}

func TestReliableTransfer(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		transfer(t, seed, true)
	}
	transfer(t, 4, false)
}

func TestDeterminism(t *testing.T) {
	a, b, c := transfer(t, 77, true), transfer(t, 77, true), transfer(t, 78, true)
	if a != b {
		t.Error("same seed gave different traces")
	}
	if a == c {
		t.Error("different seeds gave the same trace")
	}
}

// ticker wants Poll every period, forever, and never sends.
type ticker struct {
	period time.Duration
	next   time.Time
	polls  int
}

func (k *ticker) Receive([]byte, time.Time) {}
func (k *ticker) Poll(_ []byte, now time.Time) int {
	if !now.Before(k.next) {
		k.polls++
		k.next = now.Add(k.period)
	}
	return 0
}
func (k *ticker) Deadline() time.Time { return k.next }

// stuck keeps a deadline in the past and never sends.
type stuck struct{ sink }

func (stuck) Deadline() time.Time { return Start }

// liar claims a packet longer than the buffer.
type liar struct{ sink }

func (liar) Poll(buf []byte, _ time.Time) int { return len(buf) + 1 }

func TestRunErrors(t *testing.T) {
	t.Run("stalled", func(t *testing.T) {
		n := New(1, LinkConfig{}, LinkConfig{})
		if err := n.Run(&sink{}, &sink{}, nil, time.Hour); !errors.Is(err, ErrStalled) {
			t.Errorf("Run = %v", err)
		}
	})
	t.Run("lost ping stalls", func(t *testing.T) {
		n := New(1, LinkConfig{Loss: 1}, LinkConfig{})
		a := &pinger{n: 3}
		if err := n.Run(a, &echoer{}, func() bool { return a.got == 3 }, time.Hour); !errors.Is(err, ErrStalled) {
			t.Errorf("Run = %v", err)
		}
	})
	t.Run("time limit", func(t *testing.T) {
		n := New(1, LinkConfig{}, LinkConfig{})
		k := &ticker{period: time.Second, next: Start}
		if err := n.Run(k, &sink{}, nil, 10*time.Second); !errors.Is(err, ErrTimeLimit) {
			t.Errorf("Run = %v", err)
		}
		if !n.Now().Equal(Start.Add(10*time.Second)) || k.polls != 11 {
			t.Errorf("stopped at %v after %d ticks", n.Now(), k.polls)
		}
		// A second Run continues from there with a fresh limit.
		if err := n.Run(k, &sink{}, nil, 5*time.Second); !errors.Is(err, ErrTimeLimit) || !n.Now().Equal(Start.Add(15*time.Second)) {
			t.Errorf("second Run = %v at %v", err, n.Now())
		}
	})
	t.Run("event limit", func(t *testing.T) {
		// Zero delay both ways: the echo bounces forever at one instant.
		n := New(1, LinkConfig{}, LinkConfig{})
		n.MaxEvents = 1000
		a, b := &echoer{queue: [][]byte{{1, 2, 3}}}, &echoer{}
		if err := n.Run(a, b, nil, time.Hour); !errors.Is(err, ErrEventLimit) {
			t.Errorf("Run = %v", err)
		}
		if n.Now() != Start {
			t.Errorf("clock moved to %v", n.Now())
		}
	})
	t.Run("livelock", func(t *testing.T) {
		n := New(1, LinkConfig{}, LinkConfig{})
		if err := n.Run(&stuck{}, &sink{}, nil, time.Hour); !errors.Is(err, ErrStalled) {
			t.Errorf("Run = %v", err)
		}
	})
	t.Run("bad poll length", func(t *testing.T) {
		n := New(1, LinkConfig{}, LinkConfig{})
		err := n.Run(&sink{}, &liar{}, nil, time.Hour)
		if err == nil || errors.Is(err, ErrStalled) {
			t.Errorf("Run = %v", err)
		}
	})
	t.Run("done on entry", func(t *testing.T) {
		n := New(1, LinkConfig{}, LinkConfig{})
		a := &pinger{n: 1}
		if err := n.Run(a, &echoer{}, func() bool { return true }, time.Hour); err != nil || a.sent != 0 {
			t.Errorf("Run = %v, %d sent", err, a.sent)
		}
	})
}

func TestPollCap(t *testing.T) {
	// 25 packets ready at once and no timer, taken 10 per step: the rest
	// are taken at the same instant.
	n := New(1, LinkConfig{Delay: time.Millisecond}, LinkConfig{})
	n.MaxPolls = 10
	src, dst := &windowSender{window: 25, size: 8, total: 25}, &sink{}
	runToEnd(t, n, src, dst)
	if len(dst.seqs) != 25 || src.sent != 25 {
		t.Errorf("sent %d, delivered %d", src.sent, len(dst.seqs))
	}
	for _, at := range dst.times {
		if at != time.Millisecond {
			t.Fatalf("delivered at %v, want all at 1ms", at)
		}
	}
}

func TestTapEvents(t *testing.T) {
	n := New(1, LinkConfig{Duplicate: 1, Corrupt: 1, MTU: 10, Delay: time.Millisecond}, LinkConfig{})
	var evs []Event
	var ats []time.Duration
	n.Tap = func(dir int, pkt []byte, at time.Time, ev Event) {
		if dir != 0 {
			t.Errorf("event %v in direction %d", ev, dir)
		}
		evs = append(evs, ev)
		ats = append(ats, at.Sub(Start))
	}
	n.Send(0, make([]byte, 11))
	n.Send(0, []byte{0})
	runToEnd(t, n, &sink{}, &sink{})
	want := []Event{EventSent, EventMTUDropped, EventSent, EventCorrupted, EventDuplicated, EventCorrupted, EventDelivered, EventDelivered}
	if len(evs) != len(want) {
		t.Fatalf("events %v, want %v", evs, want)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Fatalf("events %v, want %v", evs, want)
		}
	}
	if ats[len(ats)-1] != time.Millisecond || ats[0] != 0 {
		t.Errorf("event times %v", ats)
	}
	if EventBlackoutDropped.String() != "blackout-dropped" || Event(200).String() != "Event(200)" {
		t.Error("Event.String")
	}
}
