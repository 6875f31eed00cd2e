package mux

import (
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
	"github.com/havenproto/haven/mux/congestion"
	"github.com/havenproto/haven/wire"
)

// pmtuRun sends size bytes from a to b over net and checks every byte; it
// returns the sender's stats at the end.
func pmtuRun(t *testing.T, net *netsim.Network, ca, cb Config, size uint64, during func(a *Session)) Stats {
	t.Helper()
	a, b := pair(t, ca, cb, net.Now())
	appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
	appB.expect["bulk"] = size
	appA.send("bulk", 3, size)
	done := allDone(appA, appB)
	if during != nil {
		inner := done
		done = func() bool { during(a); return inner() }
	}
	err := net.Run(simEnd{appA}, simEnd{appB}, done, time.Hour)
	for _, app := range []*peerApp{appA, appB} {
		if app.err != nil {
			t.Fatal(app.err)
		}
	}
	if err != nil {
		t.Fatalf("run: %v (A: %+v)", err, a.Stats())
	}
	for _, j := range appB.in {
		if !j.eof || j.read != size {
			t.Fatalf("B read %d of %d bytes (eof %v)", j.read, size, j.eof)
		}
	}
	return a.Stats()
}

// TestPathMTUDiscovery: a session starts at the base size and ends at the
// largest candidate the path carries and both sides accept; lost probes
// cost no congestion response (the transfer loses nothing else).
func TestPathMTUDiscovery(t *testing.T) {
	cases := []struct {
		name   string
		mtu    int // the links' largest UDP payload (0: no limit)
		peer   int // the receiver's MaxPacketSize (0: default)
		want   int
		probes uint64
	}{
		{"loopback", 0, 0, pmtuLoopback, 1},
		{"jumbo", 9000 - 28, 0, pmtuJumbo, 2},
		{"ethernet", ethernetMTU, 0, pmtuEthernet, 3},
		{"ethernet-ipv6", 1500 - 48, 0, wire.DefaultPacketSize, 3},
		{"peer-limit", 0, 16000, 16000, 1},
		{"peer-limit-jumbo-path", 9000 - 28, 16000, pmtuJumbo, 2},
		{"peer-at-base", 0, wire.DefaultPacketSize, wire.DefaultPacketSize, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			link := netsim.LinkConfig{Delay: 5 * time.Millisecond, Bandwidth: 1e9, QueueBytes: 4 << 20, MTU: tc.mtu}
			net := netsim.New(3, link, link)
			st := pmtuRun(t, net, Config{}, Config{MaxPacketSize: tc.peer}, 8*mib, nil)
			if st.PacketSize != tc.want || st.PMTUProbes != tc.probes {
				t.Fatalf("packet size %d after %d probes, want %d after %d", st.PacketSize, st.PMTUProbes, tc.want, tc.probes)
			}
			if lost := st.PacketsLost; lost > tc.probes {
				t.Fatalf("%d packets lost, more than the %d probes", lost, tc.probes)
			}
			if st.StreamBytesRetransmitted != 0 {
				t.Fatalf("%d bytes retransmitted on a lossless path", st.StreamBytesRetransmitted)
			}
		})
	}
}

// TestLostProbeNotKept: a probe the path cannot carry (here at a 1,500-byte
// MTU) leaves the sent ring once it is lost: it caused no congestion
// response, so a late acknowledgement has nothing to undo. Kept for the
// three probe timeouts of lost data, it held the ring's front, and the
// ring grew to every packet sent meanwhile.
func TestLostProbeNotKept(t *testing.T) {
	link := netsim.LinkConfig{Delay: 5 * time.Millisecond, Bandwidth: 1e9, QueueBytes: 4 << 20, MTU: 1500 - 48} // IPv6
	net := netsim.New(3, link, link)
	most, flight := 0, 0
	st := pmtuRun(t, net, Config{}, Config{}, 64*mib, func(a *Session) {
		most = max(most, a.sent.n)
		flight = max(flight, a.rec.inFlight/wire.DefaultPacketSize)
	})
	if st.PMTUProbes != 3 || st.PacketsLost != 3 {
		t.Fatalf("%d probes, %d packets lost; want the three probes lost", st.PMTUProbes, st.PacketsLost)
	}
	if most > 2*flight+64 {
		t.Fatalf("the sent ring held %d packets, with at most %d in flight", most, flight)
	}
}

// TestPathMTUBlackHole: the path stops carrying large packets in the middle
// of a transfer (a route change); the session falls back to the base size
// and every byte still arrives.
func TestPathMTUBlackHole(t *testing.T) {
	link := netsim.LinkConfig{Delay: 5 * time.Millisecond, Bandwidth: 1e9, QueueBytes: 4 << 20}
	net := netsim.New(9, link, link)
	shrunk, sawLarge := false, false
	st := pmtuRun(t, net, Config{}, Config{}, 32*mib, func(a *Session) {
		if !shrunk && a.Stats().PacketSize == pmtuLoopback && a.Stats().StreamBytesSent > 8*mib {
			sawLarge, shrunk = true, true
			small := link
			small.MTU = ethernetMTU
			net.SetLink(0, small)
			net.SetLink(1, small)
		}
	})
	if !sawLarge {
		t.Fatal("the session never reached the loopback size")
	}
	// Back at the base size, the search starts again and finds the
	// Ethernet size.
	if st.PacketSize != pmtuEthernet || st.PMTUBlackHoles == 0 {
		t.Fatalf("packet size %d after the path shrank (%d black holes found), want %d", st.PacketSize, st.PMTUBlackHoles, pmtuEthernet)
	}
}

// TestPathMTUNoFalseBlackHole: probe timeouts that come from lost ACKs (the
// return path is down for a while), not from lost large packets, make the
// session suspect a black hole, but the first ACK after the outage covers
// large packets, so the size stays.
func TestPathMTUNoFalseBlackHole(t *testing.T) {
	link := netsim.LinkConfig{Delay: 5 * time.Millisecond, Bandwidth: 1e9, QueueBytes: 4 << 20}
	back := link
	back.Blackouts = []netsim.Window{{Start: 300 * time.Millisecond, End: 700 * time.Millisecond}}
	net := netsim.New(5, link, back)
	st := pmtuRun(t, net, Config{}, Config{}, 64*mib, nil)
	if st.PacketSize != pmtuLoopback || st.PMTUBlackHoles != 0 {
		t.Fatalf("packet size %d, %d black holes found after an ACK outage; want %d and none", st.PacketSize, st.PMTUBlackHoles, pmtuLoopback)
	}
}

// TestPathMTUPacing: after the packet size grew, the pacer still counts in
// base-size packets, so a small control packet never waits for a large
// packet's worth of budget (TestResetWithCode stalled on that).
func TestPathMTUPacing(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, b := pair(t, Config{}, Config{}, now)
	sh := newShuttle(a, b, now)
	id, _ := a.OpenStream("s", 3)
	a.Write(id, make([]byte, 100_000))
	for i := 0; i < 10; i++ {
		sh.round()
		acceptIncoming(b)
	}
	if a.Stats().PacketSize != pmtuLoopback {
		t.Fatalf("packet size %d; want %d", a.Stats().PacketSize, pmtuLoopback)
	}
	if got, want := a.rec.pacer.Capacity(), 10*wire.DefaultPacketSize; got != want {
		t.Fatalf("pacer burst %d bytes, want %d (ten base-size packets)", got, want)
	}
	if got := a.rec.cc.Window(); got < 2*pmtuLoopback {
		t.Fatalf("congestion window %d below two packets of the new size", got)
	}
}

// TestPathMTUPacingJumbo: packets of a jumbo frame keep the pacer's
// allowance of a millisecond of its rate (up to MaxRateBurst): only packets
// larger than that (loopback's) are a system call's worth each. With the
// allowance of ten base-size packets that larger packets get, bulk on a
// 9,000-byte MTU ran at 1,300 MB/s instead of 1,780 (PERFORMANCE.md).
func TestPathMTUPacingJumbo(t *testing.T) {
	link := netsim.LinkConfig{Delay: 5 * time.Millisecond, Bandwidth: 1e9, QueueBytes: 4 << 20, MTU: 9000 - 28}
	net := netsim.New(3, link, link)
	checked := 0
	st := pmtuRun(t, net, Config{}, Config{}, 32*mib, func(a *Session) {
		p := &a.rec.pacer
		want := int(min(p.Rate()*congestion.BurstInterval.Seconds(), congestion.MaxRateBurst))
		if a.Stats().PacketSize != pmtuJumbo || want <= 10*wire.DefaultPacketSize {
			return // not yet at the jumbo size, or too slow for the rate to count
		}
		checked++
		if got := p.Capacity(); got != want {
			t.Fatalf("pacer burst %d bytes at packets of %d and %.0f B/s, want %d (a millisecond of the rate)",
				got, pmtuJumbo, p.Rate(), want)
		}
	})
	if st.PacketSize != pmtuJumbo || checked == 0 {
		t.Fatalf("packet size %d, pacer checked %d times", st.PacketSize, checked)
	}
}

// TestSetCarrier: a session on a reliable carrier (the TCP fallback, with
// its 64 KiB packets) moves to a datagram path with a 1,500-byte MTU in the
// middle of a transfer (PROTOCOL.md §8.2). SetCarrier takes it back to
// the base size at once, with loss recovery as on any datagram path, and
// every byte arrives; without it, a reliable carrier never suspects a
// black hole and the transfer stalls on packets the path drops.
func TestSetCarrier(t *testing.T) {
	link := netsim.LinkConfig{Delay: 5 * time.Millisecond, Bandwidth: 1e9, QueueBytes: 4 << 20}
	net := netsim.New(11, link, link)
	moved, sawLarge := false, false
	reliable := Config{ReliableCarrier: true}
	st := pmtuRun(t, net, reliable, reliable, 24*mib, func(a *Session) {
		if !moved && a.Stats().PacketSize == pmtuLoopback && a.Stats().StreamBytesSent > 8*mib {
			sawLarge, moved = true, true
			small := link
			small.MTU = ethernetMTU
			net.SetLink(0, small)
			net.SetLink(1, small)
			a.SetCarrier(false, 0)
			if a.Stats().PacketSize != wire.DefaultPacketSize || a.MaxPacketSize() != wire.DefaultPacketSize {
				t.Fatalf("packet size %d (largest %d) right after SetCarrier, want the base %d",
					a.Stats().PacketSize, a.MaxPacketSize(), wire.DefaultPacketSize)
			}
		}
	})
	if !sawLarge {
		t.Fatal("the session never reached the loopback size on the reliable carrier")
	}
	// SetCarrier's base size, then the search on the datagram path.
	if st.PacketSize != pmtuEthernet || st.PMTUBlackHoles != 0 {
		t.Fatalf("packet size %d (%d black holes) after the move, want %d found without a black hole",
			st.PacketSize, st.PMTUBlackHoles, pmtuEthernet)
	}
}
