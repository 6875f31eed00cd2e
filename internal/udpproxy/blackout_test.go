package udpproxy

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestBlackout: during a blackout nothing crosses in either direction and
// every datagram read is counted as lost and blacked out; afterwards the
// proxy relays again, with no decision drawn for the blacked-out ones.
func TestBlackout(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	p := newProxy(t, srv.addr(), Config{})
	c := listen(t, lo4)
	roundTrips(t, c, p, 10, 4)

	// Client → target during the blackout: read, counted, not sent.
	p.Blackout(time.Hour)
	sendPaced(t, c, p, 10, 60, 8)
	st := settle(t, p)
	if want := (DirStats{Received: 60, Forwarded: 10, Lost: 50, BlackedOut: 50}); st.ToTarget != want {
		t.Errorf("to target %+v, want %+v", st.ToTarget, want)
	}
	if srv.count() != 10 {
		t.Errorf("target got %d datagrams, want the 10 before the blackout", srv.count())
	}

	// Ending the blackout early: traffic flows both ways again.
	p.Blackout(0)
	for i, r := range roundTrips(t, c, p, 10, 4) {
		if !bytes.Equal(r, payload(i)) {
			t.Fatalf("reply %d corrupted after the blackout", i)
		}
	}
	st = settle(t, p)
	if st.ToTarget.BlackedOut != 50 || st.ToClient.BlackedOut != 0 || st.ToClient.Forwarded != 20 {
		t.Errorf("stats after the blackout: %+v", st)
	}
}

// TestBlackoutEnds: replies from the target are blacked out too, and a
// blackout ends by itself.
func TestBlackoutEnds(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	p := newProxy(t, srv.addr(), Config{})
	c := listen(t, lo4)
	roundTrips(t, c, p, 1, 1)
	var upstream netip.AddrPort
	srv.mu.Lock()
	for port := range srv.ports {
		upstream = netip.AddrPortFrom(srv.addr().Addr(), port)
	}
	srv.mu.Unlock()

	start := time.Now()
	p.Blackout(400 * time.Millisecond)
	// A datagram from the target to the session's upstream socket, inside
	// the blackout, must not reach the client.
	if _, err := srv.conn.WriteToUDPAddrPort(payload(1), upstream); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { return p.Stats().ToClient.BlackedOut == 1 }) {
		t.Fatalf("the target's datagram was not blacked out: %+v", p.Stats())
	}
	// Bounded: within 10 s some round trip gets through, and none before
	// the end of the blackout.
	buf := make([]byte, bufSize)
	for i := 2; ; i++ {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no reply 10 s after a 400 ms blackout: %+v", p.Stats())
		}
		if _, err := c.WriteToUDPAddrPort(payload(i), p.Addr()); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _, err := c.ReadFromUDPAddrPort(buf); err == nil {
			if seqOf(buf[:n]) == 1 {
				t.Fatal("the blacked-out datagram reached the client")
			}
			if el := time.Since(start); el < 400*time.Millisecond {
				t.Fatalf("a reply crossed %v into a 400 ms blackout", el)
			}
			break
		}
	}
}

// TestTap: the tap sees every datagram read, in both directions and before
// impairment: what goes to the target is shown as the client sent it, even
// though every copy is then corrupted.
func TestTap(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	var mu sync.Mutex
	var toTargetSeen, toClientSeen, modified int
	tap := func(toTarget bool, pkt []byte) {
		mu.Lock()
		defer mu.Unlock()
		if !toTarget {
			toClientSeen++
			return
		}
		toTargetSeen++
		if !bytes.Equal(pkt, payload(seqOf(pkt))) {
			modified++
		}
	}
	p := newProxy(t, srv.addr(), Config{Corrupt: 1, Seed: 5, Tap: tap})
	sendPaced(t, listen(t, lo4), p, 0, 100, 8)
	// The target echoes the corrupted copies; wait for all 100 echoes.
	var st Stats
	if !eventually(5*time.Second, func() bool {
		st = settle(t, p)
		return st.ToClient.Received == 100
	}) {
		t.Fatalf("stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if toTargetSeen != 100 || toClientSeen != 100 || modified != 0 || st.ToTarget.Corrupted != 100 {
		t.Errorf("tap saw %d to the target (%d modified) and %d to the client; stats %+v",
			toTargetSeen, modified, toClientSeen, st)
	}
}

// TestBlockClient: a client IP address cut off gets nothing through in
// either direction, counted as blacked out, while another client of the
// same proxy is relayed; restored, it is relayed again.
func TestBlockClient(t *testing.T) {
	srv := startServer(t, lo4, true, 0)
	p := newProxy(t, srv.addr(), Config{})
	a := listen(t, lo4)
	b := listen(t, netip.MustParseAddrPort("127.0.0.2:0"))
	roundTrips(t, a, p, 2, 1)
	roundTrips(t, b, p, 2, 1)

	p.BlockClient(netip.MustParseAddr("127.0.0.2"), true)
	before := srv.count()
	sendPaced(t, b, p, 10, 20, 8)
	roundTrips(t, a, p, 5, 2) // the other client is untouched
	st := settle(t, p)
	if st.ToTarget.BlackedOut != 10 {
		t.Errorf("to target %+v, want the 10 datagrams of the cut-off client blacked out", st.ToTarget)
	}
	if got := srv.count() - before; got != 5 {
		t.Errorf("target got %d datagrams while 127.0.0.2 was cut off, want the other client's 5", got)
	}

	p.BlockClient(netip.MustParseAddr("127.0.0.2"), false)
	for i, r := range roundTrips(t, b, p, 3, 1) {
		if !bytes.Equal(r, payload(i)) {
			t.Fatalf("reply %d corrupted after the cut", i)
		}
	}
}
