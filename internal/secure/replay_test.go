package secure

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/noise"
	"github.com/havenproto/haven/wire"
)

func TestInitiationReplay(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	now := at(0)
	older := firstInit(t, p.initiator(t, 1, 0, now), now)
	newer := firstInit(t, p.initiator(t, 2, 0, now.Add(time.Millisecond)), now.Add(time.Millisecond))

	if _, err := p.r.HandleInitiation(nil, newer, srcAddr, now, LoadState{}, 0); err != nil {
		t.Fatal(err)
	}
	// The same initiation again, even much later and from another address.
	for _, src := range []struct {
		when time.Duration
	}{{0}, {time.Hour}} {
		reply, err := p.r.HandleInitiation(nil, newer, otherAddr, at(src.when), LoadState{}, 0)
		if err != ErrReplayedInitiation || reply.Packet != nil {
			t.Fatalf("replay after %v: %v, %d bytes", src.when, err, len(reply.Packet))
		}
	}
	// An initiation with an older timestamp than one already accepted.
	if reply, err := p.r.HandleInitiation(nil, older, srcAddr, now, LoadState{}, 0); err != ErrReplayedInitiation || reply.Packet != nil {
		t.Fatalf("older initiation: %v", err)
	}
	// A newer one is still accepted.
	newest := firstInit(t, p.initiator(t, 3, 0, now), now)
	if _, err := p.r.HandleInitiation(nil, newest, srcAddr, now, LoadState{}, 0); err != nil {
		t.Fatal(err)
	}
}

// TestStampTableCapacity: with a full set, the least recently accepted key
// is evicted, yet its old initiations stay refused (the set's floor), and
// the floor is clamped against far-future timestamps.
func TestStampTableCapacity(t *testing.T) {
	tab := newStampTable(4, time.Minute, [16]byte{}) // one set of 4 ways
	if len(tab.sets) != 1 {
		t.Fatalf("%d sets", len(tab.sets))
	}
	now := at(0)
	ts := func(d time.Duration) wire.Timestamp { return timestampOf(at(d)) }
	key := func(i byte) wire.PublicKey { return wire.PublicKey{i} }
	for i := range byte(4) {
		if !tab.accept(key(i), ts(time.Duration(i)*time.Second), now.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("key %d refused", i)
		}
	}
	// A fifth key evicts key 0 (accepted longest ago).
	if !tab.accept(key(4), ts(10*time.Second), now.Add(10*time.Second)) {
		t.Fatal("key 4 refused")
	}
	if tab.accept(key(0), ts(0), now.Add(11*time.Second)) {
		t.Fatal("replay of the evicted key's initiation accepted")
	}
	if !tab.accept(key(0), ts(11*time.Second), now.Add(11*time.Second)) {
		t.Fatal("fresh initiation of the evicted key refused")
	}
	// Key 1 was evicted by key 0's return; a new key with a clock behind
	// the floor (1 s) is refused until it passes it.
	if tab.accept(key(9), ts(500*time.Millisecond), now.Add(12*time.Second)) {
		t.Fatal("timestamp below the floor accepted")
	}
	// A far-future timestamp raises the floor only to its acceptance time
	// plus the tolerance once evicted.
	if !tab.accept(key(20), ts(1000*time.Hour), now.Add(13*time.Second)) {
		t.Fatal("far-future key refused")
	}
	for i := range byte(4) {
		tab.accept(key(30+i), ts(time.Duration(20+i)*time.Second), now.Add(time.Duration(20+i)*time.Second))
	}
	if want := ts(13*time.Second + time.Minute); tab.sets[0].floor != want {
		t.Fatalf("floor %+v, want %+v", tab.sets[0].floor, want)
	}
	if !tab.accept(key(40), ts(2*time.Minute), now.Add(2*time.Minute)) {
		t.Fatal("honest key locked out past the tolerance")
	}
}

func TestTransportReplay(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	now := at(0)
	ti, tr := p.transports(t, Limits{}, now)

	first, _ := seal(t, ti, "first", now)
	if _, _, err := open(tr, first, now); err != nil {
		t.Fatal(err)
	}
	// Duplicate.
	if _, _, err := open(tr, first, now); err != ErrReplay {
		t.Fatalf("duplicate: %v", err)
	}
	// Seal enough packets to slide the window past packet 1.
	const n = noise.ReplayWindowSize + 100
	pkts := make([][]byte, n)
	for i := 1; i < n; i++ {
		pkts[i], _ = seal(t, ti, "x", now)
	}
	last := uint64(n - 1)
	if _, pn, err := open(tr, pkts[last], now); err != nil || pn != last {
		t.Fatalf("newest: %v", err)
	}
	// Window edge: last-8127 is the oldest still judged, last-8128 too old.
	edge := last - (noise.ReplayWindowSize - 1)
	if _, _, err := open(tr, pkts[edge], now); err != nil {
		t.Fatalf("window edge %d: %v", edge, err)
	}
	if _, _, err := open(tr, pkts[edge], now); err != ErrReplay {
		t.Fatalf("window edge replayed: %v", err)
	}
	if _, _, err := open(tr, pkts[edge-1], now); err != ErrReplay {
		t.Fatalf("just below the window: %v", err)
	}
	if _, _, err := open(tr, pkts[1], now); err != ErrReplay {
		t.Fatalf("far below the window: %v", err)
	}
	// Out of order inside the window is fine.
	if _, _, err := open(tr, pkts[last-5], now); err != nil {
		t.Fatal(err)
	}

	// Forged high counter with a bad tag: rejected, and the window does not
	// move, so packets just above the old edge still open.
	forged := bytes.Clone(pkts[last-1])
	wire.PutPacketNumber(forged, last+1_000_000)
	if _, _, err := open(tr, forged, now); err != ErrAuth {
		t.Fatalf("forged high counter: %v", err)
	}
	if _, _, err := open(tr, pkts[edge+1], now); err != nil {
		t.Fatalf("window moved by a forged packet: %v", err)
	}
	// Counters at or above the hard limit are refused before decryption.
	for _, pn := range []uint64{DefaultRejectAfterMessages, math.MaxUint64 - 1, math.MaxUint64} {
		c := bytes.Clone(pkts[last-2])
		wire.PutPacketNumber(c, pn)
		if _, _, err := open(tr, c, now); err != ErrReplay {
			t.Fatalf("pn %d: %v", pn, err)
		}
	}
	if _, _, err := open(tr, pkts[last-2], now); err != nil {
		t.Fatalf("legit packet after forged ones: %v", err)
	}
}

// TestRejectAfterMessagesOpen: once the receiver has opened
// RejectAfterMessages packets under one key set, it refuses every further
// packet under those keys before decrypting (and the window stays put).
func TestRejectAfterMessagesOpen(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	now := at(0)
	ei, er := p.handshake(t, 1, 0, now)
	ti, _ := NewTransport(ei, Limits{}, now)
	tr, _ := NewTransport(er, Limits{RejectAfterMessages: 10}, now)
	pkts := make([][]byte, 12)
	for i := range pkts {
		pkts[i], _ = seal(t, ti, "x", now)
	}
	for i := 0; i < 10; i++ {
		if _, _, err := open(tr, pkts[i], now); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	for _, i := range []int{10, 11} {
		if _, _, err := open(tr, pkts[i], now); err != ErrReplay {
			t.Fatalf("packet %d past the limit: %v", i, err)
		}
	}
}

// TestSealPacketNumbers: Seal takes the session's packet numbers from the
// header and refuses one that is not above the last sealed, so a nonce
// never repeats, across rekeys too.
func TestSealPacketNumbers(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	ti, tr := p.transports(t, Limits{}, at(0))
	b := packet(ti, 1, "a")
	wire.PutPacketNumber(b, 7)
	if _, pn, err := ti.Seal(b, at(0)); err != nil || pn != 7 {
		t.Fatalf("seal pn 7: %v %d", err, pn)
	}
	for _, pn := range []uint64{0, 6, 7} {
		b := packet(ti, 1, "b")
		wire.PutPacketNumber(b, pn)
		if _, _, err := ti.Seal(b, at(0)); err != ErrPacketNumber {
			t.Fatalf("seal pn %d after 7: %v", pn, err)
		}
	}
	if ti.NextPacketNumber() != 8 {
		t.Fatalf("next %d", ti.NextPacketNumber())
	}
	rekey(t, p.ini, p.r, ti, tr, at(ms))
	b = packet(ti, 1, "c")
	wire.PutPacketNumber(b, 7)
	if _, _, err := ti.Seal(b, at(ms)); err != ErrPacketNumber {
		t.Fatalf("a number reused under new keys: %v", err)
	}
}

func TestOpenRejectsJunk(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	now := at(0)
	ti, tr := p.transports(t, Limits{}, now)
	pkt, _ := seal(t, ti, "x", now)
	if _, _, err := tr.Open(pkt[:wire.Overhead-1], now); err != ErrPacketTooShort {
		t.Fatal(err)
	}
	h := bytes.Clone(pkt)
	h[wire.OffFlags] |= byte(wire.FlagHandshake)
	if _, _, err := tr.Open(h, now); err != ErrNotTransport {
		t.Fatal(err)
	}
	k := bytes.Clone(pkt)
	k[wire.OffFlags] ^= byte(wire.FlagKeyPhase)
	if _, _, err := tr.Open(k, now); err != ErrNoKeys {
		t.Fatalf("other key phase: %v", err)
	}
	if _, _, err := ti.Seal(make([]byte, 10, 100), now); err != ErrPacketTooShort {
		t.Fatal(err)
	}
	b := packet(ti, 1, "x")
	if _, _, err := ti.Seal(b[:len(b):len(b)], now); err != ErrBufferTooSmall {
		t.Fatal(err)
	}
	b[wire.OffFlags] = byte(wire.FlagHandshake)
	if _, _, err := ti.Seal(b, now); err != ErrNotTransport {
		t.Fatal(err)
	}
	// The spin bit survives sealing; the K bit is the transport's.
	b = packet(ti, 1, "x")
	b[wire.OffFlags] = byte(wire.FlagSpin | wire.FlagKeyPhase)
	out, _, err := ti.Seal(b, now)
	if err != nil || wire.Flags(out[wire.OffFlags]) != wire.FlagSpin {
		t.Fatalf("flags %#x, %v", out[wire.OffFlags], err)
	}
	if _, _, err := open(tr, out, now); err != nil {
		t.Fatal(err)
	}
}
