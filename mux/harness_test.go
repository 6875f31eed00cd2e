package mux

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// ethernetMTU is the largest UDP payload on a path with a 1,500-byte MTU
// under IPv4. The simulated wide-area links carry no more, as on the
// Internet, so path MTU discovery's larger probes are lost there and
// sessions end at this size (pmtuEthernet).
const ethernetMTU = 1500 - 28

// The test harness: two Sessions joined by a netsim.Network. A 16-byte
// FNV-128a checksum stands in for the AEAD tag, so corrupted packets are
// dropped exactly as failed authentication would drop them.

// pattern returns byte i of test stream k: deterministic, position-dependent.
func pattern(k uint32, i uint64) byte { return byte(i*31 + uint64(k)*7 + i>>9) }

// fillPattern fills p with stream k's bytes from offset off.
func fillPattern(p []byte, k uint32, off uint64) {
	for j := range p {
		p[j] = pattern(k, off+uint64(j))
	}
}

// streamJob is one stream a peer sends (or receives and checks).
type streamJob struct {
	id       uint32
	key      uint32 // pattern key, shared by both ends
	size     uint64
	written  uint64
	read     uint64
	eof      bool
	finished time.Time
	closed   bool
}

// peerApp is the application on one end.
type peerApp struct {
	t       testing.TB
	name    string
	s       *Session
	out     []*streamJob          // streams this end writes
	in      map[uint32]*streamJob // streams this end reads, by channel id
	expect  map[string]uint64     // service name -> size of incoming stream
	buf     []byte
	err     error
	onEvent func(*peerApp, Event) // optional hook
	// strict makes a writer whose Write came back short wait for the
	// channel's EventWritable before it writes again, as the endpoint's
	// writers do, instead of trying at every step; held marks those.
	strict   bool
	held     map[uint32]bool
	progress func(j *streamJob, now time.Time) // called after each read that made progress
}

func newPeerApp(t testing.TB, name string, s *Session) *peerApp {
	return &peerApp{t: t, name: name, s: s, in: map[uint32]*streamJob{}, expect: map[string]uint64{}, buf: make([]byte, 64<<10)}
}

// send opens a stream to service and schedules size pattern bytes on it.
func (a *peerApp) send(service string, prio uint8, size uint64) *streamJob {
	id, err := a.s.OpenStream(service, prio)
	if err != nil {
		a.t.Fatalf("%s: OpenStream: %v", a.name, err)
	}
	j := &streamJob{id: id, key: keyOf(service), size: size}
	a.out = append(a.out, j)
	return j
}

func keyOf(service string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(service))
	return h.Sum32()
}

func (a *peerApp) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// step runs the application: accept channels, read and check, write.
func (a *peerApp) step(now time.Time) {
	for {
		ev, ok := a.s.PollEvent()
		if !ok {
			break
		}
		if a.onEvent != nil {
			a.onEvent(a, ev)
		}
		if ev.Kind&EventWritable != 0 {
			delete(a.held, ev.Channel)
		}
		if ev.Kind&EventIncoming != 0 {
			info, _ := a.s.Info(ev.Channel)
			if info.Type == wire.ChannelStream {
				size, ok := a.expect[info.Service]
				if !ok {
					a.s.Refuse(ev.Channel, wire.RefuseNoService, "no service "+info.Service)
					continue
				}
				a.in[ev.Channel] = &streamJob{id: ev.Channel, key: keyOf(info.Service), size: size}
			}
			if err := a.s.Accept(ev.Channel); err != nil {
				a.fail(err)
			}
		}
	}
	for _, j := range a.in {
		for !j.eof {
			n, err := a.s.Read(j.id, a.buf)
			for i := 0; i < n; i++ {
				if a.buf[i] != pattern(j.key, j.read+uint64(i)) {
					a.fail(fmt.Errorf("%s: channel %d byte %d = %#x, want %#x", a.name, j.id, j.read+uint64(i), a.buf[i], pattern(j.key, j.read+uint64(i))))
					return
				}
			}
			j.read += uint64(n)
			if n > 0 && a.progress != nil {
				a.progress(j, now)
			}
			if err == io.EOF {
				j.eof, j.finished = true, now
				if j.read != j.size {
					a.fail(fmt.Errorf("%s: channel %d ended at %d bytes, want %d", a.name, j.id, j.read, j.size))
				}
				a.s.CloseChannel(j.id, 0)
			} else if err != nil {
				a.fail(fmt.Errorf("%s: read channel %d: %w", a.name, j.id, err))
				return
			}
			if n == 0 {
				break
			}
		}
	}
	for _, j := range a.out {
		for j.written < j.size && !a.held[j.id] {
			free := len(a.buf)
			if c := a.s.channels.Lookup(j.id); c != nil && c.send != nil && !a.strict {
				// What Write would take: no pattern filled for nothing.
				// (A strict writer tries, and waits when it gets less.)
				free = min(c.send.Free(), c.send.UnsentRoom(a.s.unsentCap(c)))
			}
			n := int(min(uint64(len(a.buf)), j.size-j.written, uint64(free)))
			if n == 0 {
				break
			}
			fillPattern(a.buf[:n], j.key, j.written)
			w, err := a.s.Write(j.id, a.buf[:n])
			if err != nil {
				a.fail(fmt.Errorf("%s: write channel %d: %w", a.name, j.id, err))
				return
			}
			j.written += uint64(w)
			if w < n {
				if a.strict {
					if a.held == nil {
						a.held = map[uint32]bool{}
					}
					a.held[j.id] = true
				}
				break
			}
		}
		if j.written == j.size && !j.closed {
			j.closed = true
			a.s.CloseWrite(j.id)
		}
	}
}

// simEnd adapts a peerApp to netsim.Endpoint.
type simEnd struct{ a *peerApp }

const simTag = 16

func checksum(p []byte) [16]byte {
	h := fnv.New128a()
	h.Write(p)
	var sum [16]byte
	h.Sum(sum[:0])
	return sum
}

// simOpen checks a simulated packet's checksum "tag" and returns the
// plaintext; false means it was corrupted (dropped, as a failed AEAD is).
func simOpen(pkt []byte) ([]byte, bool) {
	if len(pkt) < simTag {
		return nil, false
	}
	body := pkt[:len(pkt)-simTag]
	sum := checksum(body)
	return body, bytes.Equal(sum[:], pkt[len(body):])
}

// simSeal appends the checksum "tag" to the n-byte packet in b and returns
// the sealed length (0 stays 0: nothing to send).
func simSeal(b []byte, n int) int {
	if n == 0 {
		return 0
	}
	sum := checksum(b[:n])
	return n + copy(b[n:], sum[:])
}

func (e simEnd) Receive(pkt []byte, now time.Time) {
	body, ok := simOpen(pkt)
	if !ok {
		return
	}
	if err := e.a.s.Receive(body, now); err != nil {
		var pe *protocolError
		if errors.As(err, &pe) {
			e.a.fail(fmt.Errorf("%s: protocol error: %w", e.a.name, err))
		}
	}
	e.a.step(now)
}

func (e simEnd) Poll(b []byte, now time.Time) int {
	e.a.step(now)
	return simSeal(b, e.a.s.Poll(b, now))
}

func (e simEnd) Deadline() time.Time { return e.a.s.Deadline() }

// pair makes two sessions that completed a (simulated) handshake at now.
func pair(t testing.TB, ca, cb Config, now time.Time) (*Session, *Session) {
	t.Helper()
	idA := wire.MakePeerID(wire.AuthTag{0xaa, 1, 2, 3}, 0x11111111)
	idB := wire.MakePeerID(wire.AuthTag{0xbb, 4, 5, 6}, 0x22222222)
	pb := cb.Params()
	align := pb.Align()
	a, err := New(ca, Initiator, idA, idB, cb.Params(), align, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cb, Responder, idB, idA, ca.Params(), align, now)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// allDone reports whether every stream of both apps has been read to EOF.
func allDone(apps ...*peerApp) func() bool {
	return func() bool {
		for _, a := range apps {
			if a.err != nil {
				return true
			}
			for _, j := range a.in {
				if !j.eof {
					return false
				}
			}
		}
		n := 0
		for _, a := range apps {
			n += len(a.in)
		}
		want := 0
		for _, a := range apps {
			want += len(a.out)
		}
		return n == want
	}
}
