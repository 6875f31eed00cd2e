package wire

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/havenproto/haven/internal/doccheck"
)

// The worked examples of docs/PROTOCOL.md §8. Each is built here with the
// encoder; TestProtocolDocExamples checks the document's hex dumps against
// them byte for byte. HAVEN_PRINT_EXAMPLES=1 prints the dumps to paste.

// segment is one annotated field of an example packet.
type segment struct {
	b    []byte
	note string
}

type docExample struct {
	name string
	segs []segment
}

func (e docExample) bytes() []byte {
	var b []byte
	for _, s := range e.segs {
		b = append(b, s.b...)
	}
	return b
}

// exampleKey returns the X25519 key pair whose private key is 32 bytes of v.
func exampleKey(v byte) (PrivateKey, PublicKey) {
	priv := PrivateKey(bytes.Repeat([]byte{v}, 32))
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		panic(err)
	}
	return priv, PublicKey(k.PublicKey().Bytes())
}

// headerSegs splits an encoded header into its annotated fields.
func headerSegs(h Header) []segment {
	b := h.Append(nil)
	return []segment{
		{b[0:8], "protocol id"},
		{b[8:9], fmt.Sprintf("flags %#02x", uint8(h.Flags))},
		{b[9:10], "reserved"},
		{b[10:12], fmt.Sprintf("payload length %d", h.Length)},
		{b[12:16], fmt.Sprintf("channel %d", h.Channel)},
		{b[16:20], "destination: auth tag"},
		{b[20:24], fmt.Sprintf("destination: ephemeral %#08x", h.Destination.Ephemeral())},
		{b[24:28], "source: auth tag"},
		{b[28:32], fmt.Sprintf("source: ephemeral %#08x", h.Source.Ephemeral())},
		{b[32:40], fmt.Sprintf("packet number %d", h.PacketNumber)},
	}
}

// msgSegs pads to align, then splits an encoded message into header fields
// and body parts (bodyNotes name consecutive body slices of the given sizes;
// a final size of -1 takes the rest).
func msgSegs(at int, align int, m wireMessage, bodyNotes ...any) []segment {
	var segs []segment
	if pad := MessageStart(at, align) - at; pad > 0 {
		segs = append(segs, segment{make([]byte, pad), fmt.Sprintf("padding: body aligned to %d", align)})
	}
	b := m.Append(nil)
	var h MessageHeader
	if err := h.Parse(b); err != nil {
		panic(err)
	}
	segs = append(segs,
		segment{b[0:1], "message id " + h.ID.String()},
		segment{b[1:2], fmt.Sprintf("message flags %#02x", h.Flags)},
		segment{b[2:4], fmt.Sprintf("body length %d", h.Length)},
		segment{b[4:8], fmt.Sprintf("argument %d", h.Arg)},
	)
	body := b[8:]
	for i := 0; i+1 < len(bodyNotes); i += 2 {
		n := bodyNotes[i+1].(int)
		if n < 0 {
			n = len(body)
		}
		segs = append(segs, segment{body[:n], bodyNotes[i].(string)})
		body = body[n:]
	}
	if len(body) != 0 {
		panic("unannotated body bytes")
	}
	return segs
}

func segLen(segs []segment) int {
	n := 0
	for _, s := range segs {
		n += len(s.b)
	}
	return n
}

func docExamples() []docExample {
	_, initPub := exampleKey(0x49)
	_, respPub := exampleKey(0x52)
	_, ephPub := exampleKey(0x45)
	ini := AuthTagOf(initPub)
	rsp := AuthTagOf(respPub)
	var out []docExample

	// 1. A handshake initiation.
	h := Header{Flags: FlagHandshake, Destination: MakePeerID(rsp, 0), Source: MakePeerID(ini, 0x1b2c3d4e)}
	init := HandshakeInit{Ephemeral: ephPub}
	copy(init.Static[:], bytes.Repeat([]byte{0x5a}, len(init.Static)))
	copy(init.Payload[:], bytes.Repeat([]byte{0xc3}, len(init.Payload)))
	copy(init.MAC1[:], bytes.Repeat([]byte{0x31}, MACLen))
	segs := headerSegs(h)
	segs = append(segs, msgSegs(HeaderLen, 8, &init,
		"ephemeral public key (cleartext)", 32, "encrypted static key + tag", 48,
		"encrypted payload (40 bytes) + tag", 56, "mac1", 16, "mac2 (zero: no cookie)", 16)...)
	out = append(out, docExample{"handshake-init", segs})

	// 2. A new stream channel: OPEN and first data in one packet, align 8.
	h = Header{Channel: 1, Destination: MakePeerID(rsp, 0x0badcafe), Source: MakePeerID(ini, 0x1b2c3d4e), PacketNumber: 1}
	segs = headerSegs(h)
	segs = append(segs, msgSegs(segLen(segs), 8, &Open{Type: ChannelStream, Priority: 3, Window: 262144, Service: []byte("echo")},
		"channel type 1 (stream)", 1, "priority 3", 1, "reserved", 2, `service name "echo"`, -1)...)
	segs = append(segs, msgSegs(segLen(segs), 8, &Stream{Offset: 0, Data: []byte("hello")}, `data "hello"`, -1)...)
	out = append(out, docExample{"open-stream", segs})

	// 3. Session control on channel 0 with 16-byte alignment.
	h = Header{Flags: FlagSpin, Channel: 0, Destination: MakePeerID(ini, 0x1b2c3d4e), Source: MakePeerID(rsp, 0x0badcafe), PacketNumber: 7}
	segs = headerSegs(h)
	segs = append(segs, msgSegs(segLen(segs), 16, &Ping{})...)
	segs = append(segs, msgSegs(segLen(segs), 16, &Ack{Delay: 1000, Ranges: []AckRange{{10, 12}, {5, 7}}},
		"largest acknowledged 12", 8, "first range 2: 10..12", 4, "reserved", 4, "gap 1: 8..9 missing", 4, "range length 2: 5..7", 4)...)
	segs = append(segs, msgSegs(segLen(segs), 16, &MaxData{Max: 1 << 20}, "session limit 1048576", 8)...)
	out = append(out, docExample{"session-control", segs})

	// 4. A datagram, the packet padded to a 128-byte bucket (tag included).
	h = Header{Channel: 2, Destination: MakePeerID(rsp, 0x0badcafe), Source: MakePeerID(ini, 0x1b2c3d4e), PacketNumber: 9}
	segs = headerSegs(h)
	segs = append(segs, msgSegs(segLen(segs), 8, &Datagram{Seq: 17, Data: []byte("tick")}, `datagram "tick"`, -1)...)
	segs = append(segs, segment{make([]byte, 128-TagLen-segLen(segs)), "padding to the 128-byte bucket (PADDING id 0x00)"})
	out = append(out, docExample{"datagram-padded", segs})

	// 5. Stream (TCP) fallback: CLOSE of the session, length field set.
	cl := Close{Code: CloseRestarting, Reason: []byte("restarting")}
	h = Header{Destination: MakePeerID(ini, 0x1b2c3d4e), Source: MakePeerID(rsp, 0x0badcafe), PacketNumber: 42,
		Length: uint16(MessageStart(HeaderLen, 8) - HeaderLen + cl.Len() + TagLen)}
	segs = headerSegs(h)
	segs = append(segs, msgSegs(segLen(segs), 8, &cl, `reason "restarting"`, -1)...)
	out = append(out, docExample{"stream-close", segs})
	return out
}

// dump renders an example as PROTOCOL.md shows it.
func (e docExample) dump() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "```text example=%s\n", e.name)
	off := 0
	for _, s := range e.segs {
		for i := 0; i < len(s.b); i += 8 {
			chunk := s.b[i:min(i+8, len(s.b))]
			note := s.note
			if i > 0 {
				note = "  …"
			}
			hx := hex.EncodeToString(chunk)
			var spaced []string
			for j := 0; j < len(hx); j += 2 {
				spaced = append(spaced, hx[j:j+2])
			}
			fmt.Fprintf(&sb, "%04d: %-23s | %s\n", off, strings.Join(spaced, " "), note)
			off += len(chunk)
		}
	}
	sb.WriteString("```\n")
	return sb.String()
}

func TestProtocolDocExamples(t *testing.T) {
	if os.Getenv("HAVEN_PRINT_EXAMPLES") != "" {
		for _, e := range docExamples() {
			fmt.Printf("%s\n", e.dump())
		}
	}
	dumps, err := doccheck.Dumps("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := docExamples()
	if len(dumps) < len(examples) {
		t.Errorf("PROTOCOL.md has %d examples, want %d", len(dumps), len(examples))
	}
	for _, e := range examples {
		got, ok := dumps[e.name]
		if !ok {
			t.Errorf("example %q missing from PROTOCOL.md", e.name)
			continue
		}
		if !bytes.Equal(got, e.bytes()) {
			t.Errorf("example %q differs from the encoder:\ndoc % x\nenc % x", e.name, got, e.bytes())
		}
		// Each example must also parse as what it claims to be.
		var h Header
		if err := h.Parse(got); err != nil {
			t.Errorf("example %q: header: %v", e.name, err)
			continue
		}
		var r MessageReader
		align := 8
		if e.name == "session-control" {
			align = 16
		}
		r.Reset(got, align)
		for r.Next() {
			if _, err := parseMessage(r.Message()); err != nil {
				t.Errorf("example %q: message at %d: %v", e.name, r.Offset(), err)
			}
			if !r.Header().ID.AllowedIn(h.Channel, h.IsHandshake()) {
				t.Errorf("example %q: %v not allowed on channel %d", e.name, r.Header().ID, h.Channel)
			}
		}
		if r.Err() != nil {
			t.Errorf("example %q: %v", e.name, r.Err())
		}
		if h.Length != 0 && int(h.Length) != len(got)-HeaderLen+TagLen {
			t.Errorf("example %q: length field %d, packet after header %d", e.name, h.Length, len(got)-HeaderLen+TagLen)
		}
	}
}
