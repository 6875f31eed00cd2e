package mux

import (
	"net/netip"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// TestAbandonPath: a sender whose packets all vanish (its path went
// dark) counts probe timeouts (PTOCount); once its owner moves it to
// another path, AbandonPath declares everything outstanding lost, sends
// the data again at once, and starts counting timeouts afresh.
func TestAbandonPath(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a, _ := pair(t, Config{}, Config{}, now)
	id, err := a.OpenStream("", 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(id, make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, wire.MaxPacketSize)
	for a.Poll(buf, now) > 0 { // everything leaves, nothing arrives
	}
	for i := 0; i < 2; i++ {
		now = a.Deadline()
		for a.Poll(buf, now) > 0 {
		}
	}
	if n := a.PTOCount(); n != 2 {
		t.Fatalf("PTOCount %d after two probe timeouts into the dark, want 2", n)
	}
	lostBefore := a.Stats().PacketsLost
	a.AbandonPath(0)
	if n, st := a.PTOCount(), a.Stats(); n != 0 || st.PacketsLost <= lostBefore || st.BytesInFlight != 0 {
		t.Fatalf("after AbandonPath: PTOCount %d, %d packets lost (was %d), %d bytes in flight",
			n, st.PacketsLost, lostBefore, st.BytesInFlight)
	}
	retx := a.Stats().StreamBytesRetransmitted
	for a.Poll(buf, now) > 0 { // at once, not at the next timeout
	}
	if got := a.Stats().StreamBytesRetransmitted - retx; got < wire.DefaultPacketSize/2 {
		t.Fatalf("%d stream bytes sent again right after AbandonPath, want what the window allows", got)
	}
}

// TestPingWithAck: a side that only receives makes one ACK-only packet per
// round trip ack-eliciting with a PING (RFC 9000 §13.2.4), so it has
// packets of its own to time out; and when the transfer ends the two ends
// fall silent instead of pinging each other.
func TestPingWithAck(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a, b := pair(t, Config{}, Config{}, now)
	id, err := a.OpenStream("", 3)
	if err != nil {
		t.Fatal(err)
	}
	// Within the initial window: b sends no MAX_DATA, only ACKs, its
	// ACCEPT, and the PINGs under test.
	if _, err := a.Write(id, make([]byte, 200<<10)); err != nil {
		t.Fatal(err)
	}
	bufA, bufB := make([]byte, 65536), make([]byte, 65536)
	rbuf := make([]byte, 64<<10)
	var bid uint32
	pings := 0
	for i := 0; i < 200; i++ {
		for k := 0; k < 10000; k++ {
			n := a.Poll(bufA, now)
			m := b.Poll(bufB, now)
			if n > 0 {
				b.Receive(bufA[:n], now)
			}
			if m > 0 {
				pings += countID(t, bufB[:m], b.align, wire.MsgPing)
				a.Receive(bufB[:m], now)
			}
			if n == 0 && m == 0 {
				break
			}
		}
		if id := acceptIncoming(b); id != 0 {
			bid = id
		}
		for bid != 0 {
			if n, _ := b.Read(bid, rbuf); n == 0 {
				break
			}
		}
		drain(a, nil)
		now = now.Add(time.Millisecond)
	}
	if got := b.Stats().StreamBytesSent; got != 0 {
		t.Fatalf("the receiver sent %d stream bytes", got)
	}
	if pings == 0 {
		t.Fatal("the receiver's ACKs never carried a PING")
	}
	sentA, sentB := a.Stats().PacketsSent, b.Stats().PacketsSent
	for i := 0; i < 100; i++ { // nothing left to send: quiet
		for a.Poll(bufA, now) > 0 || b.Poll(bufB, now) > 0 {
		}
		now = now.Add(10 * time.Millisecond)
	}
	if da, db := a.Stats().PacketsSent-sentA, b.Stats().PacketsSent-sentB; da > 2 || db > 2 {
		t.Fatalf("after the transfer the ends sent %d and %d more packets: they ping each other", da, db)
	}
}

// TestAdvertise: ADDRESS messages reach the peer, which reports the
// addresses (PeerAddresses, EventAddresses), and one lost on the way is
// sent again.
func TestAdvertise(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a, b := pair(t, Config{}, Config{}, now)
	addrs := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:4433"), netip.MustParseAddrPort("[2001:db8::1]:4433")}
	b.Advertise(addrs)
	buf := make([]byte, wire.MaxPacketSize)
	if n := b.Poll(buf, now); n == 0 || countID(t, buf[:n], b.align, wire.MsgAddress) != 2 {
		t.Fatal("the first packet does not carry the two ADDRESS messages")
	} // lost
	delivered := false
	for i := 0; i < 10 && !delivered; i++ {
		now = b.Deadline()
		for {
			n := b.Poll(buf, now)
			if n == 0 {
				break
			}
			a.Receive(buf[:n], now)
		}
		drain(a, func(ev Event) { delivered = delivered || ev.Channel == 0 && ev.Kind&EventAddresses != 0 })
	}
	if got := a.PeerAddresses(); !delivered || len(got) != 2 || got[0] != addrs[0] || got[1] != addrs[1] {
		t.Fatalf("peer addresses %v (event %v) after the loss, want %v", got, delivered, addrs)
	}
}

// countID returns the messages with id in packet pkt.
func countID(t *testing.T, pkt []byte, align int, id wire.MsgID) int {
	t.Helper()
	var r wire.MessageReader
	r.Reset(pkt, align)
	n := 0
	for r.Next() {
		if r.Header().ID == id {
			n++
		}
	}
	return n
}
