package endpoint

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestRxRing: datagrams of every size go in and come out in order and
// byte-exact across many wraps of the ring, and a full ring refuses
// instead of overwriting.
func TestRxRing(t *testing.T) {
	var r rxRing
	const capacity = 10_000
	rng := rand.New(rand.NewSource(1))
	var model [][]byte
	out := make([]byte, capacity)
	next := 0
	for step := 0; step < 200_000; step++ {
		if rng.Intn(2) == 0 {
			n := rng.Intn(3000)
			if step%97 == 0 {
				n = 0
			}
			dst := r.reserve(n, capacity)
			if dst == nil {
				if len(model) == 0 {
					t.Fatalf("empty ring refused %d bytes", n)
				}
				continue
			}
			if len(dst) != n {
				t.Fatalf("reserved %d bytes for %d", len(dst), n)
			}
			for i := range dst {
				dst[i] = byte(next + i*7)
			}
			model = append(model, append([]byte(nil), dst...))
			next++
			continue
		}
		if len(model) == 0 {
			if r.n != 0 {
				t.Fatalf("ring holds %d, model none", r.n)
			}
			continue
		}
		n := r.pop(out)
		if !bytes.Equal(out[:n], model[0]) {
			t.Fatalf("step %d: popped %d bytes that differ from the %d queued", step, n, len(model[0]))
		}
		model = model[1:]
	}
	// Truncation: a short buffer gets a prefix and the full length.
	for r.n > 0 {
		r.pop(out)
	}
	copy(r.reserve(5, capacity), "hello")
	if n := r.pop(out[:2]); n != 5 || string(out[:2]) != "he" {
		t.Fatalf("truncated pop: %d %q", n, out[:2])
	}
}

// datagramPair makes a server and a client endpoint, each with datagram
// service "d", and a datagram channel from the client to the server's
// service; it returns the server, its service and the channel.
func datagramPair(t *testing.T) (*Endpoint, *DatagramService, *DatagramChannel) {
	t.Helper()
	server, client := newPair(t)
	rsvc, err := server.ListenDatagrams("d")
	if err != nil {
		t.Fatal(err)
	}
	csvc, err := client.ListenDatagrams("d")
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	dc, err := s.OpenDatagram(csvc, 3)
	if err != nil {
		t.Fatal(err)
	}
	return server, rsvc, dc
}

// TestDatagramSlowReader: a sender much faster than its receiving
// application, over loopback. Send never waits for the reader (no
// deadline is set: a Send that waited for it would hang the test), and
// every datagram is accounted for: read by the application, or dropped by
// the sender for want of credit and counted (DatagramsUnsent). The
// receiving engine drops nothing: credit keeps the sender within what the
// receiving host takes, and the reader's buffer holds what it has not
// read. How many are dropped depends on the machine's speed; that none is
// lost uncounted does not.
func TestDatagramSlowReader(t *testing.T) {
	server, rsvc, dc := datagramPair(t)
	const total = 20_000
	sent := make(chan error, 1)
	go func() {
		p := make([]byte, 1200)
		for i := 0; i < total; i++ {
			binary.LittleEndian.PutUint32(p, uint32(i))
			if err := dc.Send(p, nil); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	c := ctx(t)
	got := make([]bool, total)
	n := 0
	buf := make([]byte, 2048)
	quiet := NewDeadline()
	senderDone := false
	var unsent uint64
	// The reader stops when every datagram is either read or counted as
	// unsent, or when nothing more has come for 5 s after the sender
	// finished (then some are missing, which fails the test).
	for i := 0; ; i++ {
		if senderDone {
			unsent = dc.Session().Stats().DatagramsUnsent
			if uint64(n)+unsent >= total {
				break
			}
		}
		if i%500 == 499 {
			time.Sleep(2 * time.Millisecond) // the application falls behind
		}
		quiet.Set(time.Now().Add(time.Second))
		k, rdc, _, err := rsvc.Read(c, quiet.Wait(), buf)
		if err == os.ErrDeadlineExceeded {
			if !senderDone {
				select {
				case err := <-sent:
					if err != nil {
						t.Fatalf("sender: %v (after %d datagrams arrived)", err, n)
					}
					senderDone = true
				case <-time.After(30 * time.Second):
					t.Fatal("the sender is stuck: Send waits for the reader")
				}
				continue
			}
			break
		}
		if err != nil {
			t.Fatalf("read after %d datagrams: %v", n, err)
		}
		if k != 1200 || rdc == nil {
			t.Fatalf("read %d bytes from %v", k, rdc)
		}
		idx := int(binary.LittleEndian.Uint32(buf))
		if idx >= total || got[idx] {
			t.Fatalf("datagram %d out of range or twice", idx)
		}
		got[idx] = true
		n++
		if !senderDone {
			select {
			case err := <-sent:
				if err != nil {
					t.Fatal(err)
				}
				senderDone = true
			default:
			}
		}
	}
	var dropped uint64
	server.mu.Lock()
	for _, ss := range server.sessions {
		dropped += ss.Stats().DatagramsDropped
	}
	server.mu.Unlock()
	t.Logf("%d of %d datagrams read, %d dropped by the sender (no credit), %d by the receiving engine", n, total, unsent, dropped)
	if dropped != 0 {
		t.Fatalf("the receiving engine dropped %d datagrams: the sender overran it", dropped)
	}
	if uint64(n)+unsent != total {
		t.Fatalf("%d read + %d unsent = %d, want %d: datagrams lost uncounted", n, unsent, uint64(n)+unsent, total)
	}
}

// TestDatagramReadAllocs: receiving datagrams (the engine's queue, the
// channel's ring, Read into the caller's buffer, the credit going back)
// and sending them allocates next to nothing per datagram, both ends.
// The count is process-wide.
func TestDatagramReadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector; the non-race pass runs this")
	}
	_, rsvc, dc := datagramPair(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := make([]byte, 1200)
		for {
			if dc.Send(p, stop) != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	buf := make([]byte, 2048)
	c := ctx(t)
	read := func(k int) {
		for i := 0; i < k; i++ {
			if _, _, _, err := rsvc.Read(c, nil, buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	read(5000) // warm up: rings, windows and pools reach their size
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	const k = 20_000
	read(k)
	runtime.ReadMemStats(&m1)
	per := float64(m1.Mallocs-m0.Mallocs) / k
	t.Logf("%d datagrams, %d allocations (%.4f per datagram)", k, m1.Mallocs-m0.Mallocs, per)
	if per > 0.02 {
		t.Fatalf("%.4f allocations per datagram in steady state, want almost none", per)
	}
}
