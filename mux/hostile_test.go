package mux

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// hostilePacket builds a packet from the peer (B) to A on channel ch.
func hostilePacket(a *Session, ch uint32, pn uint64, msgs ...interface{ Append([]byte) []byte }) []byte {
	h := wire.Header{Channel: ch, Destination: a.local, Source: a.peer, PacketNumber: pn}
	p := h.Append(nil)
	for _, m := range msgs {
		p = m.Append(wire.AppendAlign(p, a.align))
	}
	return p
}

// closedWith asserts that a closed with code after a hostile packet.
func closedWith(t *testing.T, a *Session, err error, code uint32) {
	t.Helper()
	var ce *CloseError
	if !errors.As(a.Err(), &ce) || ce.Code != code || ce.Remote {
		t.Fatalf("session error %v (receive returned %v), want local close with code %d", a.Err(), err, code)
	}
	// The CLOSE goes out, and nothing else afterwards.
	buf := make([]byte, 2048)
	n := a.Poll(buf, a.now)
	var h wire.Header
	var r wire.MessageReader
	if n == 0 || h.Parse(buf[:n]) != nil {
		t.Fatal("no CLOSE sent")
	}
	r.Reset(buf[:n], a.align)
	if !r.Next() || r.Header().ID != wire.MsgClose || r.Header().Arg != code {
		t.Fatalf("first message %v arg %d, want CLOSE %d", r.Header().ID, r.Header().Arg, code)
	}
	if a.Poll(buf, a.now) != 0 {
		t.Fatal("a closing session keeps sending")
	}
}

func TestHostileAckOfUnsentPacket(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, _ := pair(t, Config{}, Config{}, now)
	err := a.Receive(hostilePacket(a, 0, 0, &wire.Ack{Ranges: []wire.AckRange{{Smallest: 0, Largest: 5}}}), now)
	closedWith(t, a, err, wire.CloseProtocol)
}

func TestHostileDataBeyondWindow(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, _ := pair(t, Config{ChannelWindow: 64 << 10}, Config{}, now)
	open := &wire.Open{Type: wire.ChannelStream, Service: []byte("x")}
	data := make([]byte, 1000)
	// Channel 2 is the responder's first; data ends past the 64 KiB window.
	err := a.Receive(hostilePacket(a, 2, 0, open, &wire.Stream{Offset: 64<<10 - 500, Data: data}), now)
	closedWith(t, a, err, wire.CloseFlowControl)
}

func TestHostileSessionWindow(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, _ := pair(t, Config{ChannelWindow: 1 << 20, SessionWindow: 100 << 10}, Config{}, now)
	open := &wire.Open{Type: wire.ChannelStream}
	var err error
	// Two channels each within their window but together beyond the session's.
	for i, ch := range []uint32{2, 4} {
		err = a.Receive(hostilePacket(a, ch, uint64(i), open, &wire.Stream{Offset: 60 << 10, Data: make([]byte, 1000)}), now)
	}
	closedWith(t, a, err, wire.CloseFlowControl)
}

func TestHostileOverlapMismatch(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, _ := pair(t, Config{}, Config{}, now)
	open := &wire.Open{Type: wire.ChannelStream}
	if err := a.Receive(hostilePacket(a, 2, 0, open, &wire.Stream{Data: []byte("hello world")}), now); err != nil {
		t.Fatal(err)
	}
	// Same bytes again: fine. Different bytes at an overlapping offset: error.
	if err := a.Receive(hostilePacket(a, 2, 1, &wire.Stream{Offset: 6, Data: []byte("world")}), now); err != nil || a.Err() != nil {
		t.Fatalf("identical overlap rejected: %v %v", err, a.Err())
	}
	err := a.Receive(hostilePacket(a, 2, 2, &wire.Stream{Offset: 6, Data: []byte("WORLD")}), now)
	closedWith(t, a, err, wire.CloseProtocol)
}

func TestHostileTooManyChannels(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, _ := pair(t, Config{MaxChannels: 4}, Config{}, now)
	var err error
	for i := uint32(1); i <= 5 && a.Err() == nil; i++ {
		err = a.Receive(hostilePacket(a, 2*i, uint64(i), &wire.Open{Type: wire.ChannelDatagram}), now)
	}
	closedWith(t, a, err, wire.CloseChannelLimit)
	if a.channels.Len() > 4 {
		t.Fatalf("%d channels allocated, limit 4", a.channels.Len())
	}
}

func TestHostileMisplacedMessages(t *testing.T) {
	now := time.Unix(1e9, 0)
	cases := []struct {
		name string
		ch   uint32
		msg  interface{ Append([]byte) []byte }
	}{
		{"stream on channel 0", 0, &wire.Stream{Data: []byte("x")}},
		{"max channels on a channel", 2, &wire.MaxChannels{Max: 9}},
		{"data on a channel we never opened", 7, &wire.Stream{Data: []byte("x")}},
		{"unknown critical message", 0, rawMessage{0x7e}},
		{"address on a channel", 2, &wire.AdvertiseAddress{Seq: 1, Addr: netip.MustParseAddrPort("192.0.2.1:9")}},
		{"malformed address", 0, rawMessage{wire.MsgAddress}},
	}
	for _, c := range cases {
		a, _ := pair(t, Config{}, Config{}, now)
		err := a.Receive(hostilePacket(a, c.ch, 0, c.msg), now)
		t.Run(c.name, func(t *testing.T) { closedWith(t, a, err, wire.CloseProtocol) })
	}
	// An unknown ignorable message is skipped; ADDRESS and ADDRESS_RETIRE
	// (PROTOCOL.md §6.6.2) are accepted.
	a, _ := pair(t, Config{}, Config{}, now)
	if err := a.Receive(hostilePacket(a, 0, 0, rawMessage{0xfe}, &wire.Ping{}), now); err != nil || a.Err() != nil {
		t.Fatalf("ignorable message: %v %v", err, a.Err())
	}
	adv := &wire.AdvertiseAddress{Seq: 1, Addr: netip.MustParseAddrPort("[2001:db8::1]:4433")}
	if err := a.Receive(hostilePacket(a, 0, 1, adv, &wire.RetireAddress{Seq: 1}), now); err != nil || a.Err() != nil {
		t.Fatalf("ADDRESS, ADDRESS_RETIRE: %v %v", err, a.Err())
	}
}

// rawMessage is a message with an arbitrary id and a 4-byte body.
type rawMessage struct{ id wire.MsgID }

func (m rawMessage) Append(b []byte) []byte {
	h := wire.MessageHeader{ID: m.id, Length: 4}
	return append(h.Append(b), 1, 2, 3, 4)
}

// TestHostileDataBeforeOpen: data for a peer channel whose OPEN has not
// arrived is dropped unacknowledged, and the session stays healthy.
func TestHostileDataBeforeOpen(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, _ := pair(t, Config{}, Config{}, now)
	if err := a.Receive(hostilePacket(a, 2, 0, &wire.Stream{Data: []byte("early")}), now); err != nil || a.Err() != nil {
		t.Fatalf("%v %v", err, a.Err())
	}
	if a.channels.Len() != 0 || a.acks.recvd.Len() != 0 {
		t.Fatal("state kept for a packet without OPEN")
	}
}
