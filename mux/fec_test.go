package mux

import (
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
	"github.com/havenproto/haven/wire"
)

// runFEC sends n datagrams of size bytes from a to b over a path that
// loses loss of the packets each way (seeded), with FEC group/repairs on
// the sender (repairs 0: none), until the network is quiet; it returns the
// datagrams b got (each checked byte for byte and delivered at most once
// by dgApp) and the sender's and receiver's FEC counters.
func runFEC(t *testing.T, group, repairs, n, size int, loss float64) (got int, snd, rcv FECStats) {
	t.Helper()
	// An Internet path: packets up to 1,500 bytes, so each carries one
	// datagram or repair (with 64 KiB packets a lost one would take a
	// whole group and its repairs with it).
	link := netsim.LinkConfig{Delay: 10 * time.Millisecond, Loss: loss, MTU: ethernetMTU}
	net := netsim.New(7, link, link)
	cfg := Config{FEC: true} // the default Config but for FEC
	a, b := pair(t, cfg, cfg, net.Now())
	id, err := a.OpenDatagram("media", 0)
	if err != nil {
		t.Fatal(err)
	}
	if repairs > 0 {
		if err := a.SetDatagramFEC(id, group, repairs); err != nil {
			t.Fatal(err)
		}
	}
	sizes := make([]int, n)
	sa := &dgApp{s: a, id: id, sizes: sizes}
	for i := range sizes {
		sizes[i] = size
		p := dgPayload(i, size)
		stamp(p, i)
		sa.queue = append(sa.queue, p)
	}
	sb := &dgApp{s: b, isRecv: true, got: map[int]bool{}, rd: make([]byte, 70000), sizes: sizes}
	var quietSince time.Time
	done := func() bool {
		if sa.bad != nil || sb.bad != nil {
			return true
		}
		if sa.sent == n && a.channels.Lookup(id).dgOut.len() == 0 {
			if quietSince.IsZero() {
				quietSince = net.Now()
			}
			return net.Now().Sub(quietSince) > time.Second
		}
		return false
	}
	net.Run(dgEnd{sa}, dgEnd{sb}, done, 10*time.Minute)
	if sa.bad != nil || sb.bad != nil {
		t.Fatal(sa.bad, sb.bad)
	}
	if sa.sent != n {
		t.Fatalf("sent %d of %d datagrams", sa.sent, n)
	}
	return len(sb.got), a.FECStats(), b.FECStats()
}

// TestDatagramFEC: at 5 % random loss, plain datagrams lose about 5 %;
// with one repair symbol per 8 datagrams as XOR parity (8, 1) most come
// back, and as Reed–Solomon over groups of 64 (64, 8), at the same 12.5 %
// overhead, at least 99.5 % are delivered (PROTOCOL.md §5.11; issue #15).
// Every datagram delivered is checked byte for byte and at most once.
func TestDatagramFEC(t *testing.T) {
	const n, size = 8000, 1000
	plain, _, _ := runFEC(t, 0, 0, n, size, 0.05)
	xor, xs, xr := runFEC(t, 8, 1, n, size, 0.05)
	rs, rss, rsr := runFEC(t, 64, 8, n, size, 0.05)
	pct := func(k int) float64 { return 100 * float64(k) / n }
	t.Logf("delivered: plain %.2f %%, XOR 8+1 %.2f %% (%d recovered, %d repairs), RS 64+8 %.2f %% (%d recovered, %d repairs)",
		pct(plain), pct(xor), xr.DatagramsRecovered, xs.RepairsSent, pct(rs), rsr.DatagramsRecovered, rss.RepairsSent)
	if pct(plain) > 97 || pct(plain) < 90 {
		t.Fatalf("plain datagrams: %.2f %% delivered at 5 %% loss: the test's loss is off", pct(plain))
	}
	if xr.DatagramsRecovered == 0 || pct(xor) < pct(plain)+2 {
		t.Errorf("XOR parity: %.2f %% delivered (%d recovered), plain %.2f %%", pct(xor), xr.DatagramsRecovered, pct(plain))
	}
	if pct(rs) < 99.5 {
		t.Errorf("Reed–Solomon 64+8: %.2f %% delivered, want at least 99.5 %%", pct(rs))
	}
	for _, st := range []FECStats{xs, rss} {
		if over := float64(st.RepairsSent) / n; over < 0.12 || over > 0.13 {
			t.Errorf("%d repair symbols for %d datagrams: want 1 per 8", st.RepairsSent, n)
		}
	}
}

// TestDatagramFECOff: without FEC at the handshake SetDatagramFEC fails
// with ErrFECOff, and a DATAGRAM_REPAIR from the peer is a protocol
// violation.
func TestDatagramFECOff(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a, b := pair(t, Config{}, Config{}, now)
	id, err := a.OpenDatagram("media", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetDatagramFEC(id, 8, 1); err != ErrFECOff {
		t.Fatalf("SetDatagramFEC without FEC: %v", err)
	}
	if err := a.SendDatagram(id, []byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, wire.MaxPacketSize)
	for n := a.Poll(buf, now); n > 0; n = a.Poll(buf, now) { // the OPEN and the datagram
		if err := b.Receive(buf[:n], now); err != nil {
			t.Fatal(err)
		}
	}
	h := wire.Header{Destination: b.local, Source: a.local, PacketNumber: a.nextPN, Channel: id}
	p := h.Append(nil)
	p = (&wire.DatagramRepair{First: 0, Group: 1, Repairs: 1, Symbol: []byte{1, 0, 'x'}}).Append(wire.AppendAlign(p, a.align))
	if err := b.Receive(p, now); err == nil {
		t.Fatal("a DATAGRAM_REPAIR without FEC was accepted")
	}
}

// TestHostileRepairs: in an FEC session, a DATAGRAM_REPAIR for datagrams
// beyond the channel's limit is a flow-control error, one on a stream
// channel a protocol violation, and repairs that disagree with their
// group's earlier ones, or forge a recovery, deliver nothing twice.
func TestHostileRepairs(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	setup := func() (a, b *Session, dg, st uint32) {
		a, b = pair(t, Config{FEC: true}, Config{FEC: true}, now)
		dg, _ = a.OpenDatagram("media", 0)
		st, _ = a.OpenStream("bulk", 3)
		a.SendDatagram(dg, []byte("zero"))
		a.Write(st, []byte("x"))
		buf := make([]byte, wire.MaxPacketSize)
		for n := a.Poll(buf, now); n > 0; n = a.Poll(buf, now) {
			if err := b.Receive(buf[:n], now); err != nil {
				t.Fatal(err)
			}
		}
		return a, b, dg, st
	}
	send := func(a, b *Session, ch uint32, m *wire.DatagramRepair) error {
		h := wire.Header{Destination: b.local, Source: a.local, PacketNumber: a.nextPN, Channel: ch}
		a.nextPN++
		return b.Receive(m.Append(wire.AppendAlign(h.Append(nil), a.align)), now)
	}
	a, b, dg, st := setup()
	if err := send(a, b, st, &wire.DatagramRepair{Group: 1, Repairs: 1, Symbol: []byte{0, 0}}); err == nil {
		t.Error("a repair on a stream channel was accepted")
	}
	a, b, dg, _ = setup()
	if err := send(a, b, dg, &wire.DatagramRepair{First: 1 << 20, Group: 8, Repairs: 1, Symbol: []byte{0, 0}}); err == nil {
		t.Error("a repair beyond the datagram limit was accepted")
	}
	a, b, dg, _ = setup()
	// Datagram 0 arrived; a forged repair "recovers" datagram 1 of a
	// group {0, 1}, then a repair of another shape for the same group
	// is ignored, and datagram 1's real arrival is not delivered twice.
	forged := []byte{3, 0, 'o', 'n', 'e'}
	for i, c := range []byte{4, 0, 'z', 'e', 'r', 'o'} {
		if i < len(forged) {
			forged[i] ^= c
		}
	}
	forged = append(forged, 'o') // s_0 xor s_1, padded to 6 bytes
	if err := send(a, b, dg, &wire.DatagramRepair{First: 0, Group: 2, Repairs: 1, Symbol: forged}); err != nil {
		t.Fatal(err)
	}
	if err := send(a, b, dg, &wire.DatagramRepair{First: 0, Group: 3, Repairs: 2, Symbol: []byte{0, 0}}); err != nil {
		t.Fatal(err)
	}
	if b.FECStats().DatagramsRecovered != 1 {
		t.Fatalf("recovered %d datagrams from the forged repair, want 1", b.FECStats().DatagramsRecovered)
	}
	a.SendDatagram(dg, []byte("one"))
	buf := make([]byte, wire.MaxPacketSize)
	for n := a.Poll(buf, now); n > 0; n = a.Poll(buf, now) {
		b.Receive(buf[:n], now)
	}
	var got []string
	rd := make([]byte, 64)
	for {
		n, err := b.RecvDatagram(dg, rd)
		if err != nil || n == 0 {
			break
		}
		got = append(got, string(rd[:n]))
	}
	if len(got) != 2 {
		t.Fatalf("datagrams delivered %q, want zero and one, once each", got)
	}
}
