package wire

import (
	"bytes"
	"errors"
	"testing"
)

// buildPacket appends a header and msgs with body alignment align.
func buildPacket(h Header, align int, msgs ...wireMessage) []byte {
	b := h.Append(make([]byte, 0, 2048))
	for _, m := range msgs {
		b = AppendAlign(b, align)
		b = m.Append(b)
	}
	return b
}

func TestMessageStart(t *testing.T) {
	for _, align := range []int{1, 2, 4, 8, 16} {
		for end := HeaderLen; end < HeaderLen+64; end++ {
			start := MessageStart(end, align)
			// Reference: the first start ≥ end whose body is aligned.
			want := end
			for (want+MsgHeaderLen)%align != 0 {
				want++
			}
			if start != want {
				t.Fatalf("MessageStart(%d, %d) = %d, want %d", end, align, start, want)
			}
			if n := len(AppendAlign(make([]byte, end), align)); n != want {
				t.Fatalf("AppendAlign(%d bytes, %d) = %d bytes, want %d", end, align, n, want)
			}
		}
	}
}

func TestMessageReaderWalk(t *testing.T) {
	msgs := transportSamples() // the transport messages
	for _, align := range []int{1, 2, 4, 8, 16} {
		pkt := buildPacket(sampleHeader(), align, msgs...)
		pkt = append(pkt, make([]byte, 13)...) // trailing zero padding
		var r MessageReader
		r.Reset(pkt, align)
		i := 0
		for r.Next() {
			raw := r.Message()
			if i >= len(msgs) {
				t.Fatalf("align %d: more messages than written", align)
			}
			if want := msgs[i].Append(nil); !bytes.Equal(raw, want) {
				t.Fatalf("align %d, message %d: got % x, want % x", align, i, raw, want)
			}
			if r.Header().ID != MsgID(want0(msgs[i])) {
				t.Fatalf("header id")
			}
			i++
		}
		if r.Err() != nil || i != len(msgs) {
			t.Fatalf("align %d: walked %d of %d, err %v", align, i, len(msgs), r.Err())
		}
	}
}

func want0(m wireMessage) byte { return m.Append(nil)[0] }

func TestMessageBodiesAligned(t *testing.T) {
	for _, align := range []int{2, 4, 8, 16} {
		pkt := buildPacket(sampleHeader(), align,
			&Stream{Data: []byte("abc")}, &Ping{}, &Stream{Offset: 3, Data: []byte("defgh")}, &MaxData{Max: 1})
		var r MessageReader
		r.Reset(pkt, align)
		for r.Next() {
			off := r.Offset() + MsgHeaderLen // the body, from the packet's start
			if off%align != 0 || !bytes.Equal(pkt[r.Offset():r.Offset()+len(r.Message())], r.Message()) {
				t.Fatalf("align %d: body at offset %d", align, off)
			}
		}
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
	}
}

func TestMessageReaderErrors(t *testing.T) {
	var r MessageReader
	r.Reset(make([]byte, HeaderLen-1), 8)
	if r.Next() || !errors.Is(r.Err(), ErrShortPacket) {
		t.Error("short packet")
	}
	r.Reset(make([]byte, HeaderLen), 3)
	if r.Next() || r.Err() == nil {
		t.Error("bad alignment accepted")
	}
	pkt := buildPacket(sampleHeader(), 8, &Stream{Data: []byte("abcdef")})
	r.Reset(pkt[:len(pkt)-1], 8)
	if r.Next() || !errors.Is(r.Err(), ErrMessageLength) {
		t.Errorf("overrun: %v", r.Err())
	}
	hh := sampleHeader()
	r.Reset(hh.Append(nil), 8)
	if r.Next() || r.Err() != nil {
		t.Error("empty payload")
	}
	// PADDING ends the list even if bytes follow.
	pkt = buildPacket(sampleHeader(), 8, &Ping{})
	pkt = append(pkt, 0, 0, 0, 0, 0, 0, 0, 0)
	pkt = (&Ping{}).Append(pkt)
	r.Reset(pkt, 8)
	n := 0
	for r.Next() {
		n++
	}
	if n != 1 || r.Err() != nil {
		t.Errorf("padding: %d messages, %v", n, r.Err())
	}
}

func TestAllowedIn(t *testing.T) {
	tests := []struct {
		id        MsgID
		ch        uint32
		handshake bool
		want      bool
	}{
		{MsgHandshakeInit, 0, true, true},
		{MsgHandshakeInit, 0, false, false},
		{MsgAck, 0, true, false},
		{MsgAck, 5, false, true},
		{MsgPing, 5, false, true},
		{MsgClose, 0, false, true},
		{MsgClose, 5, false, true},
		{MsgMaxChannels, 0, false, true},
		{MsgMaxChannels, 5, false, false},
		{MsgPathChallenge, 5, false, false},
		{MsgStream, 0, false, false},
		{MsgStream, 5, false, true},
		{MsgOpen, 0, false, false},
		{MsgID(0x7e), 5, false, false},
		{MsgID(0xfe), 5, false, true},
	}
	for _, tt := range tests {
		if got := tt.id.AllowedIn(tt.ch, tt.handshake); got != tt.want {
			t.Errorf("%v on channel %d (handshake %v) = %v", tt.id, tt.ch, tt.handshake, got)
		}
	}
}

// TestPacketAllocs asserts that iterating and decoding the messages of a
// packet allocates nothing: the steady-state receive path.
func TestPacketAllocs(t *testing.T) {
	pkt := buildPacket(sampleHeader(), 8,
		&Ack{Ranges: []AckRange{{95, 100}, {80, 90}}}, &Stream{Data: make([]byte, 1200)}, &Ping{},
		&Datagram{Seq: 1, Data: []byte("x")}, &MaxData{Max: 5})
	var (
		r   MessageReader
		h   Header
		ack = Ack{Ranges: make([]AckRange, 0, 8)}
		st  Stream
		dg  Datagram
		md  MaxData
	)
	n := testing.AllocsPerRun(1000, func() {
		if err := h.Parse(pkt); err != nil {
			t.Fatal(err)
		}
		r.Reset(pkt, 8)
		for r.Next() {
			var err error
			switch r.Header().ID {
			case MsgAck:
				err = ack.Parse(r.Message())
			case MsgStream:
				err = st.Parse(r.Message())
			case MsgDatagram:
				err = dg.Parse(r.Message())
			case MsgMaxData:
				err = md.Parse(r.Message())
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per packet walk, want 0", n)
	}
	out := make([]byte, 0, 2048)
	n = testing.AllocsPerRun(1000, func() {
		b := sampleHeaderValue.Append(out[:0])
		b = AppendAlign(b, 8)
		b = ack.Append(b)
		b = AppendAlign(b, 8)
		_ = st.Append(b)
	})
	if n != 0 {
		t.Fatalf("%v allocations per packet build, want 0", n)
	}
}

var sampleHeaderValue = sampleHeader()
