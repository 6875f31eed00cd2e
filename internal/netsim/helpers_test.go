package netsim

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// fill writes a recognizable packet of size bytes (at least 8): seq in the
// first 8 bytes, then a pattern derived from seq.
func fill(buf []byte, seq uint64, size int) []byte {
	buf = buf[:size]
	binary.BigEndian.PutUint64(buf, seq)
	for j := 8; j < size; j++ {
		buf[j] = byte(seq*31 + uint64(j)*7)
	}
	return buf
}

// source is an endpoint that sends packet i (of sizes(i) bytes) at time
// at(i), for i in [0, n), and ignores what it receives.
type source struct {
	n     int
	at    func(i int) time.Duration
	sizes func(i int) int
	next  int
	sent  []time.Duration // send time of each packet
}

// paced returns a source of n packets of size bytes, one every gap from
// Start.
func paced(n int, gap time.Duration, size int) *source {
	return &source{
		n:     n,
		at:    func(i int) time.Duration { return time.Duration(i) * gap },
		sizes: func(int) int { return size },
	}
}

// scheduled returns a source that sends one packet of size bytes at each
// of the given offsets from Start (in increasing order).
func scheduled(size int, times ...time.Duration) *source {
	return &source{
		n:     len(times),
		at:    func(i int) time.Duration { return times[i] },
		sizes: func(int) int { return size },
	}
}

func (s *source) Receive([]byte, time.Time) {}

func (s *source) Poll(buf []byte, now time.Time) int {
	if s.next >= s.n || now.Sub(Start) < s.at(s.next) {
		return 0
	}
	i := s.next
	s.next++
	s.sent = append(s.sent, now.Sub(Start))
	return len(fill(buf, uint64(i), s.sizes(i)))
}

func (s *source) Deadline() time.Time {
	if s.next >= s.n {
		return time.Time{}
	}
	return Start.Add(s.at(s.next))
}

// sink is an endpoint that records what it receives and sends nothing.
type sink struct {
	keep  bool // keep copies of the packets
	seqs  []uint64
	times []time.Duration
	pkts  [][]byte
}

func (s *sink) Receive(pkt []byte, now time.Time) {
	var seq uint64 = 1<<64 - 1
	if len(pkt) >= 8 {
		seq = binary.BigEndian.Uint64(pkt)
	}
	s.seqs = append(s.seqs, seq)
	s.times = append(s.times, now.Sub(Start))
	if s.keep {
		s.pkts = append(s.pkts, append([]byte(nil), pkt...))
	}
}

func (s *sink) Poll([]byte, time.Time) int { return 0 }
func (s *sink) Deadline() time.Time        { return time.Time{} }

// runToEnd runs a one-way transfer until nothing is left to happen, which
// Run reports as ErrStalled.
func runToEnd(t testing.TB, n *Network, a, b Endpoint) {
	t.Helper()
	if err := n.Run(a, b, nil, 1000*time.Hour); !errors.Is(err, ErrStalled) {
		t.Fatalf("Run = %v, want ErrStalled at the natural end", err)
	}
	if n.Pending() != 0 {
		t.Fatalf("%d packets still pending", n.Pending())
	}
}

// lateCount counts deliveries whose sequence number is lower than one
// delivered before them: the packets that were overtaken.
func lateCount(seqs []uint64) int {
	late := 0
	var maxSeen uint64
	for i, s := range seqs {
		if i > 0 && s < maxSeen {
			late++
		}
		maxSeen = max(maxSeen, s)
	}
	return late
}

// checkIdentity verifies the accounting identity of LinkStats once nothing
// is in flight.
func checkIdentity(t *testing.T, s LinkStats) {
	t.Helper()
	want := s.Sent - s.Lost - s.BurstLost - s.QueueDropped - s.MTUDropped - s.BlackoutDropped + s.Duplicated - s.InFlight
	if s.Delivered != want {
		t.Errorf("Delivered = %d, want %d from %+v", s.Delivered, want, s)
	}
}

func within(t *testing.T, name string, got, lo, hi float64) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s = %.5f, want within [%.5f, %.5f]", name, got, lo, hi)
	}
}
