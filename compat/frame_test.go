package compat

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// packetOf builds a packet of suite s with n payload bytes (standing in
// for messages and tag) and the datagram form's zero length field.
func packetOf(s wire.Suite, n int, fill byte) []byte {
	h := wire.Header{Suite: s, Channel: 7, Destination: wire.PeerID{1, 2, 3, 4, 5, 6, 7, 8},
		Source: wire.PeerID{8, 7, 6, 5, 4, 3, 2, 1}, PacketNumber: uint64(n)}
	p := h.Append(make([]byte, 0, wire.HeaderLen+n))
	return append(p, bytes.Repeat([]byte{fill}, n)...)
}

// TestFrameRoundTrip: packets of both constructions, written back to back
// by WritePackets, come back one by one from ReadPacket, byte for byte
// with the length field set, then io.EOF.
func TestFrameRoundTrip(t *testing.T) {
	var pkts, want [][]byte
	for i, n := range []int{wire.TagLen, 1400, wire.MaxPacketSize - wire.HeaderLen, 100} {
		p := packetOf(wire.Suite(i%2), n, byte(i))
		pkts = append(pkts, p)
	}
	var stream bytes.Buffer
	scratch, err := WritePackets(&stream, pkts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		want = append(want, bytes.Clone(p))
	}
	r := NewReader(&stream, 0)
	for i, w := range want {
		got, err := r.ReadPacket()
		if err != nil || !bytes.Equal(got, w) {
			t.Fatalf("packet %d: %d bytes, %v", i, len(got), err)
		}
		var h wire.Header
		if h.Parse(got) != nil || int(h.Length) != len(got)-wire.HeaderLen {
			t.Fatalf("packet %d: length field %d for %d bytes", i, h.Length, len(got))
		}
	}
	if _, err := r.ReadPacket(); err != io.EOF {
		t.Fatalf("after the last packet: %v, want io.EOF", err)
	}
	if _, err := WritePackets(&stream, [][]byte{packetOf(0, 8, 0)[:wire.HeaderLen]}, scratch); err != ErrFrame {
		t.Fatalf("a header alone written: %v, want ErrFrame", err)
	}
}

// TestFrameHostile: what a stream that is not Haven, or not well-formed,
// gets: an error before more than one header is read, never a packet.
func TestFrameHostile(t *testing.T) {
	good := packetOf(wire.SuiteAESGCM, 64, 9)
	if err := Frame(good); err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n" + string(make([]byte, 40))), ErrForeign},
		{"TLS ClientHello", append([]byte{0x16, 0x03, 0x01, 0x02, 0x00}, make([]byte, 60)...), ErrForeign},
		{"length zero", mod(func(b []byte) []byte { wire.PutLength(b, 0); return b }), ErrFrame},
		{"length beyond the largest packet", mod(func(b []byte) []byte { wire.PutLength(b, 0xffff); return b }), ErrFrame},
		{"reserved byte", mod(func(b []byte) []byte { b[wire.OffReserved] = 1; return b }), ErrFrame},
		{"unknown flag", mod(func(b []byte) []byte { b[wire.OffFlags] |= 0x80; return b }), ErrFrame},
		{"cut inside the payload", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"cut inside the header", good[:wire.HeaderLen-1], io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		r := NewReader(bytes.NewReader(tt.stream), 0)
		if p, err := r.ReadPacket(); !errors.Is(err, tt.want) || p != nil {
			t.Errorf("%s: %d bytes, %v; want %v", tt.name, len(p), err, tt.want)
		}
	}
	// A reader for 1,500-byte packets refuses a larger one.
	big := packetOf(wire.SuiteChaChaPoly, 2000, 1)
	Frame(big)
	if _, err := NewReader(bytes.NewReader(big), 1500).ReadPacket(); err != ErrFrame {
		t.Errorf("2,040-byte packet to a 1,500-byte reader: %v", err)
	}
}

// deadlineConn records read deadlines; reads come from r.
type deadlineConn struct {
	net.Conn
	r         io.Reader
	deadlines []time.Time
}

func (c *deadlineConn) Read(b []byte) (int, error) { return c.r.Read(b) }
func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

// TestReadFirstPacket: the first packet is read under a deadline
// FirstPacketTimeout away, cleared once the packet is in.
func TestReadFirstPacket(t *testing.T) {
	p := packetOf(wire.SuiteChaChaPoly, 32, 3)
	Frame(p)
	c := &deadlineConn{r: bytes.NewReader(p)}
	before := time.Now()
	got, err := ReadFirstPacket(c, NewReader(c, 0), nil)
	if err != nil || !bytes.Equal(got, p) {
		t.Fatalf("first packet: %v", err)
	}
	if len(c.deadlines) != 2 || c.deadlines[0].Before(before.Add(FirstPacketTimeout)) ||
		c.deadlines[0].After(time.Now().Add(FirstPacketTimeout)) || !c.deadlines[1].IsZero() {
		t.Fatalf("deadlines %v", c.deadlines)
	}
	silent := &deadlineConn{r: bytes.NewReader([]byte("garbage, not Haven, at least forty bytes long"))}
	if _, err := ReadFirstPacket(silent, NewReader(silent, 0), nil); err != ErrForeign || len(silent.deadlines) != 1 {
		t.Fatalf("a foreign first packet: %v, deadlines %v", err, silent.deadlines)
	}
}

// TestReadPacketAllocs: reading packets allocates nothing.
func TestReadPacketAllocs(t *testing.T) {
	p := packetOf(wire.SuiteAESGCM, 1400, 5)
	Frame(p)
	src := bytes.NewReader(p)
	r := NewReader(src, 0)
	allocs := testing.AllocsPerRun(1000, func() {
		src.Reset(p)
		if _, err := r.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}

// FuzzReader: any byte stream read as packets never panics; every packet
// it yields starts with a protocol id, has the length field of its size
// and fits the reader's limit; and the packets written again with
// WritePackets read back identical (the framing round-trips).
func FuzzReader(f *testing.F) {
	var stream bytes.Buffer
	WritePackets(&stream, [][]byte{packetOf(0, 16, 1), packetOf(1, 300, 2)}, nil)
	f.Add(stream.Bytes())
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), wire.MinPacketSize)
		var got [][]byte
		for len(got) < 64 {
			p, err := r.ReadPacket()
			if err != nil {
				break
			}
			if _, ok := wire.SuiteOf(p); !ok || len(p) > wire.MinPacketSize ||
				int(p[wire.OffLength])|int(p[wire.OffLength+1])<<8 != len(p)-wire.HeaderLen {
				t.Fatalf("packet of %d bytes breaks the framing", len(p))
			}
			got = append(got, bytes.Clone(p))
		}
		var again bytes.Buffer
		if _, err := WritePackets(&again, got, nil); err != nil {
			t.Fatal(err)
		}
		r2 := NewReader(&again, wire.MinPacketSize)
		for i, want := range got {
			p, err := r2.ReadPacket()
			if err != nil || !bytes.Equal(p, want) {
				t.Fatalf("packet %d after a second framing: %v", i, err)
			}
		}
	})
}
