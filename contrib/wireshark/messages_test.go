package wireshark

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/havenproto/haven/internal/doccheck"
	"github.com/havenproto/haven/wire"
)

// A capture made of packets built here: the worked examples of
// docs/PROTOCOL.md §9 (§9.6 and §9.7 byte for byte as the document prints
// them), and packets carrying every message of §4.2 that a short session
// does not produce, with known field values, sealed by Go's AEADs under
// keys the test writes into a key log. Each decoded field must show the
// value encoded.

type appender interface{ Append([]byte) []byte }

// want is one message as tshark must decode it: its id and fields (each
// field's show or value attribute; a repeated field's occurrences joined
// by commas).
type want struct {
	id     string // haven.msg.type, "0x30"
	fields map[string]string
}

// synth is one packet of the synthetic capture.
type synth struct {
	name   string
	raw    []byte // the packet as sent
	status string // prefix of haven.decryption; "" for a handshake packet
	msgs   []want
}

// Peer ids of the §9 examples: the initiator's and the responder's, under
// the first construction and under AES-256-GCM (§9.7).
var (
	initID    = peerID("5fc207ad", 0x1b2c3d4e)
	respID    = peerID("f244e066", 0x0badcafe)
	initIDAES = peerID("54e42ee0", 0x1b2c3d4e)
	respIDAES = peerID("bf21ab9d", 0x0badcafe)
)

func peerID(tag string, eph uint32) wire.PeerID {
	var id wire.PeerID
	hex.Decode(id[:4], []byte(tag))
	binary.LittleEndian.PutUint32(id[4:], eph)
	return id
}

// seal seals the plaintext packet pkt (header and messages) as §7.5 says,
// with the length field as zero in the associated data.
func seal(t *testing.T, s wire.Suite, key []byte, pkt []byte) []byte {
	t.Helper()
	var aead cipher.AEAD
	nonce := make([]byte, 12)
	pn := binary.LittleEndian.Uint64(pkt[32:40])
	if s == wire.SuiteAESGCM {
		b, _ := aes.NewCipher(key)
		aead, _ = cipher.NewGCM(b)
		binary.BigEndian.PutUint64(nonce[4:], pn)
	} else {
		aead, _ = chacha20poly1305.New(key)
		binary.LittleEndian.PutUint64(nonce[4:], pn)
	}
	ad := bytes.Clone(pkt[:40])
	ad[10], ad[11] = 0, 0
	return aead.Seal(bytes.Clone(pkt[:40]), nonce, pkt[40:], ad)
}

// build encodes a header and messages, with the alignment's padding.
func build(h wire.Header, align int, msgs ...appender) []byte {
	b := h.Append(nil)
	for _, m := range msgs {
		b = wire.AppendAlign(b, align)
		b = m.Append(b)
	}
	return b
}

func keyLine(s wire.Suite, src, dst wire.PeerID, phase, align int, key []byte) string {
	id := s.ProtocolID()
	return fmt.Sprintf("HAVEN_TRAFFIC_KEY %x %x %x %d %d %x\n", id[:], src[:], dst[:], phase, align, key)
}

// synthCapture returns the synthetic packets and the key log's text.
func synthCapture(t *testing.T) ([]synth, string) {
	t.Helper()
	docs, err := doccheck.Dumps(filepath.Join("..", "..", "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := func(name string) []byte {
		b, ok := docs[name]
		if !ok || len(b) < 40 {
			t.Fatalf("docs/PROTOCOL.md has no example %q", name)
		}
		return b
	}
	k4b := bytes.Repeat([]byte{0x4b}, 32)
	k4c := bytes.Repeat([]byte{0x4c}, 32)
	k4d := bytes.Repeat([]byte{0x4d}, 32)
	cc, aes := wire.SuiteChaChaPoly, wire.SuiteAESGCM
	var log strings.Builder
	log.WriteString("# a comment, and a line of another label, both ignored\nOTHER_LABEL 00\n\n")
	log.WriteString(keyLine(cc, initID, respID, 0, 8, k4b))
	log.WriteString(keyLine(aes, initIDAES, respIDAES, 0, 8, k4b))
	log.WriteString(keyLine(cc, respID, initID, 0, 16, k4c)) // §9.3: alignment 16
	log.WriteString(keyLine(aes, respIDAES, initIDAES, 1, 4, k4d))
	log.WriteString(keyLine(aes, respIDAES, initIDAES, 1, 4, k4c)) // a second candidate, tried first: wrong
	log.WriteString(keyLine(cc, peerID("01020304", 5), initID, 0, 8, k4c))

	openStream := []want{
		{"0x20", map[string]string{"haven.open.window": "262144", "haven.open.type": "1", "haven.open.priority": "3", "haven.open.service": "echo"}},
		{"0x30", map[string]string{"haven.stream.offset": "0", "haven.stream.fin": "0", "haven.stream.data": hex.EncodeToString([]byte("hello"))}},
	}
	var out []synth
	out = append(out,
		synth{name: "§9.6", raw: doc("open-stream-sealed"), status: "decrypted, tag verified (ChaCha20-Poly1305)", msgs: openStream},
		synth{name: "§9.7", raw: doc("open-stream-sealed-aesgcm"), status: "decrypted, tag verified (AES-256-GCM)", msgs: openStream},
		synth{name: "§9.3", raw: seal(t, cc, k4c, doc("session-control")), status: "decrypted, tag verified", msgs: []want{
			{"0x09", map[string]string{"haven.msg.length": "0"}},
			{"0x08", map[string]string{"haven.ack.delay": "1000", "haven.ack.largest": "12", "haven.ack.range": "10..12,5..7", "haven.ack.gap": "1"}},
			{"0x11", map[string]string{"haven.max_data": "1048576"}},
		}},
		synth{name: "§9.4", raw: seal(t, cc, k4b, doc("datagram-padded")), status: "decrypted, tag verified", msgs: []want{
			{"0x31", map[string]string{"haven.datagram.seq": "17", "haven.datagram.frag": "0", "haven.datagram.data": hex.EncodeToString([]byte("tick"))}},
		}},
	)

	// Channel 0, every session-wide message, from the responder, K = 1,
	// alignment 4, AES-256-GCM (the second key line for these ids is the
	// right one).
	h0 := wire.Header{Suite: aes, Flags: wire.FlagKeyPhase | wire.FlagSpin, Destination: initIDAES, Source: respIDAES, PacketNumber: 70000}
	ch0 := build(h0, 4,
		&wire.Ack{Delay: 25, Ranges: []wire.AckRange{{Smallest: 60000, Largest: 69990}, {Smallest: 500, Largest: 59000}, {Smallest: 0, Largest: 7}}},
		&wire.Ping{},
		&wire.MaxData{Max: 1 << 40},
		&wire.Blocked{Limit: 123456789},
		&wire.MaxChannels{Max: 2048},
		&wire.PathChallenge{Data: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}},
		&wire.PathResponse{Data: [8]byte{8, 7, 6, 5, 4, 3, 2, 1}},
		&wire.AdvertiseAddress{Seq: 3, Addr: netip.MustParseAddrPort("192.0.2.7:4433")},
		&wire.AdvertiseAddress{Seq: 4, Addr: netip.MustParseAddrPort("[2001:db8::9]:443")},
		&wire.RetireAddress{Seq: 3},
		&wire.Close{Code: wire.CloseRestarting, Reason: []byte("restarting")},
	)
	out = append(out, synth{name: "channel 0", raw: seal(t, aes, k4c, ch0), status: "decrypted, tag verified (AES-256-GCM)", msgs: []want{
		{"0x08", map[string]string{"haven.ack.delay": "25", "haven.ack.largest": "69990", "haven.ack.first_range": "9990",
			"haven.ack.range": "60000..69990,500..59000,0..7", "haven.ack.gap": "998,491", "haven.ack.range_length": "58500,7"}},
		{"0x09", nil},
		{"0x11", map[string]string{"haven.max_data": "1099511627776"}},
		{"0x12", map[string]string{"haven.blocked": "123456789"}},
		{"0x13", map[string]string{"haven.max_channels": "2048"}},
		{"0x14", map[string]string{"haven.path.data": "0102030405060708"}},
		{"0x15", map[string]string{"haven.path.data": "0807060504030201"}},
		{"0x82", map[string]string{"haven.address.seq": "3", "haven.address.family": "4", "haven.address.ipv4": "192.0.2.7", "haven.address.port": "4433"}},
		{"0x82", map[string]string{"haven.address.seq": "4", "haven.address.family": "6", "haven.address.ipv6": "2001:db8::9", "haven.address.port": "443"}},
		{"0x83", map[string]string{"haven.address.seq": "3"}},
		{"0x10", map[string]string{"haven.close.code": "6", "haven.close.reason": "restarting"}},
	}})

	// Channel 6, every channel message, with an unknown ignorable one.
	h6 := h0
	h6.Channel, h6.PacketNumber = 6, 70001
	unknown := []byte{0x9f, 0, 3, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0xcc}
	ch6 := build(h6, 4,
		&wire.Open{Type: wire.ChannelDatagram, Priority: 0, Window: 64, Service: []byte("svc")},
		&wire.Accept{Window: 99},
		&wire.Datagram{Seq: 7, Fragmented: true, Total: 3000, FragOffset: 1200, Data: bytes.Repeat([]byte{0x5a}, 9)},
		&wire.Datagram{Seq: 8, Data: []byte{}},
		&wire.DatagramRepair{First: 40, Group: 8, Repairs: 2, Index: 1, Symbol: []byte{9, 0, 1, 2, 3}},
		rawMsg(unknown),
		&wire.Refuse{Code: 1, Reason: []byte(`no service "ftp"`)},
		&wire.Reset{Code: 77, FinalSize: 5000},
		&wire.Stream{Offset: 4096, Fin: true, Data: []byte("end")},
	)
	ch6 = append(ch6, make([]byte, 13)...) // PADDING to the end
	out = append(out, synth{name: "channel 6", raw: seal(t, aes, k4c, ch6), status: "decrypted, tag verified", msgs: []want{
		{"0x20", map[string]string{"haven.open.type": "2", "haven.open.priority": "0", "haven.open.window": "64", "haven.open.service": "svc"}},
		{"0x21", map[string]string{"haven.accept.window": "99"}},
		{"0x31", map[string]string{"haven.datagram.frag": "1", "haven.datagram.seq": "7", "haven.datagram.total": "3000",
			"haven.datagram.frag_offset": "1200", "haven.datagram.data": strings.Repeat("5a", 9)}},
		{"0x31", map[string]string{"haven.datagram.seq": "8", "haven.msg.length": "0"}},
		{"0x32", map[string]string{"haven.repair.first_seq": "40", "haven.repair.k": "8", "haven.repair.r": "2",
			"haven.repair.index": "1", "haven.repair.symbol": "0900010203"}},
		{"0x9f", map[string]string{"haven.msg.ignorable": "1", "haven.msg.unknown": "aabbcc"}},
		{"0x22", map[string]string{"haven.refuse.code": "1", "haven.refuse.reason": `no service "ftp"`}},
		{"0x23", map[string]string{"haven.reset.code": "77", "haven.reset.final_size": "5000"}},
		{"0x30", map[string]string{"haven.stream.offset": "4096", "haven.stream.fin": "1", "haven.stream.data": hex.EncodeToString([]byte("end"))}},
	}})

	// A COOKIE_REPLY (§7.4), in clear.
	cr := wire.CookieReply{}
	for i := range cr.Nonce {
		cr.Nonce[i] = 0x11
	}
	for i := range cr.Cookie {
		cr.Cookie[i] = 0x22
	}
	hc := wire.Header{Suite: cc, Flags: wire.FlagHandshake, Destination: initID, Source: peerID("f244e066", 0)}
	out = append(out, synth{name: "cookie reply", raw: build(hc, 8, &cr), msgs: []want{
		{"0x03", map[string]string{"haven.hs.cookie_nonce": strings.Repeat("11", 24), "haven.hs.cookie": strings.Repeat("22", 32)}},
	}})

	// Not decrypted: ids the key log does not name, and a key that is wrong.
	hx := wire.Header{Suite: cc, Channel: 1, Destination: respID, Source: peerID("0a0b0c0d", 9), PacketNumber: 3}
	out = append(out, synth{name: "no key", raw: seal(t, cc, k4b, build(hx, 8, &wire.Ping{})), status: "not decrypted: no key in the key log"})
	hx.Source, hx.Destination = peerID("01020304", 5), initID
	out = append(out, synth{name: "wrong key", raw: seal(t, cc, k4b, build(hx, 8, &wire.Ping{})), status: "not decrypted: the tag verifies under none of the 1 keys"})
	return out, log.String()
}

// rawMsg appends bytes as they are (a message the wire package lacks).
type rawMsg []byte

func (r rawMsg) Append(b []byte) []byte { return append(b, r...) }

// TestDissectorMessages decodes the synthetic capture with the key log:
// every packet is Haven with the header it was built with, the examples
// of §9 and every message of §4.2 decode with the values encoded (the
// alignments 16 and 4 need the key log's alignment, a second key for the
// same ids is told from the right one by its tag), and packets whose key
// is missing or wrong are shown as such.
func TestDissectorMessages(t *testing.T) {
	packets, keylog := synthCapture(t)
	dir := t.TempDir()
	logName := filepath.Join(dir, "keys.log")
	if err := os.WriteFile(logName, []byte(keylog), 0o600); err != nil {
		t.Fatal(err)
	}
	var recs []record
	client, server := netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("192.0.2.2:4433")
	for _, p := range packets {
		recs = append(recs, record{at: time.Unix(1700000000, 0), src: client, dst: server, payload: p.raw})
	}
	// Last, a UDP GSO super-datagram: four packets for one receiver back
	// to back, three of one size and a shorter one, as a capture on the
	// sending host shows them before segmentation.
	var gso [][]byte
	for i, data := range []string{strings.Repeat("a", 100), strings.Repeat("b", 100), strings.Repeat("c", 100), "d"} {
		h := wire.Header{Suite: wire.SuiteChaChaPoly, Channel: 1, Destination: respID, Source: initID, PacketNumber: uint64(20 + i)}
		gso = append(gso, seal(t, wire.SuiteChaChaPoly, bytes.Repeat([]byte{0x4b}, 32),
			build(h, 8, &wire.Stream{Offset: uint32(100 * i), Data: []byte(data)})))
	}
	recs = append(recs, record{at: time.Unix(1700000000, 0), src: client, dst: server, payload: bytes.Join(gso, nil)})
	capture := filepath.Join(dir, "synthetic.pcap")
	writePcap(t, capture, recs)
	frames := pdml(t, capture, "-o", "haven.keylog_file:"+logName)
	if len(frames) != len(packets)+1 {
		t.Fatalf("tshark shows %d frames, %d were written", len(frames), len(packets)+1)
	}
	last := frames[len(packets)]
	if len(last) != len(gso) {
		t.Fatalf("GSO super-datagram: %d Haven packets, want %d", len(last), len(gso))
	}
	for i := range gso {
		name := fmt.Sprintf("GSO segment %d", i+1)
		checkHeader(t, name, &last[i], gso[i])
		if got, want := last[i].show("haven.gso_segment"), fmt.Sprintf("%d of 4, segment size %d", i+1, len(gso[0])); got != want {
			t.Errorf("%s: haven.gso_segment %q, want %q", name, got, want)
		}
		if ms := last[i].messages(); last[i].show("haven.decrypted") != "1" || len(ms) != 1 || ms[0].show("haven.stream.offset") != fmt.Sprint(100*i) {
			t.Errorf("%s: not decoded: %q", name, last[i].show("haven.decryption"))
		}
	}
	for i, p := range packets {
		if len(frames[i]) != 1 {
			t.Fatalf("%s: %d Haven packets in the frame, want 1", p.name, len(frames[i]))
		}
		hv := &frames[i][0]
		checkHeader(t, p.name, hv, p.raw)
		if p.status == "" {
			if hv.field("haven.decrypted") != nil {
				t.Errorf("%s: a handshake packet with a decryption status", p.name)
			}
		} else if got := hv.show("haven.decryption"); !strings.HasPrefix(got, p.status) {
			t.Errorf("%s: decryption %q, want %q…", p.name, got, p.status)
		}
		ms := hv.messages()
		if len(ms) != len(p.msgs) {
			t.Errorf("%s: %d messages decoded, want %d (%s)", p.name, len(ms), len(p.msgs), hv.show("haven.messages"))
			continue
		}
		for j, w := range p.msgs {
			if got := ms[j].show("haven.msg.type"); got != w.id {
				t.Errorf("%s message %d: id %s, want %s", p.name, j, got, w.id)
			}
			for name, v := range w.fields {
				if got := ms[j].all(name); got != v {
					t.Errorf("%s message %d (%s): %s = %q, want %q", p.name, j, w.id, name, got, v)
				}
			}
		}
	}
	// The padding of §9.4 and of channel 6 is shown as padding.
	for _, i := range []int{3, 5} {
		if hv := &frames[i][0]; hv.field("haven.padding") == nil || !strings.HasSuffix(hv.show("haven.messages"), "PADDING") {
			t.Errorf("%s: padding not shown (messages %q)", packets[i].name, hv.show("haven.messages"))
		}
	}
	// §9.3's alignment 16 puts 8 bytes of padding before the ACK.
	if f := frames[2][0].field("haven.msg.align_padding"); f == nil || f.Value != "0000000000000000" {
		t.Errorf("§9.3: alignment padding %+v, want 8 zero bytes", f)
	}
	// The HAVEN_KEYLOGFILE environment variable stands in for the
	// preference.
	env := pdmlEnv(t, logName, capture)
	for i, p := range packets {
		if got, want := env[i][0].show("haven.decryption"), frames[i][0].show("haven.decryption"); got != want {
			t.Errorf("%s with HAVEN_KEYLOGFILE: %q, with the preference %q", p.name, got, want)
		}
	}
	// Without the key log the same transport packets are not decrypted.
	bare := pdml(t, capture, "-o", "haven.keylog_file:")
	for i, p := range packets {
		hv := &bare[i][0]
		checkHeader(t, p.name+" (no key log)", hv, p.raw)
		if p.status != "" && (hv.show("haven.decrypted") != "0" || len(hv.messages()) != 0 || hv.field("haven.payload") == nil) {
			t.Errorf("%s without a key log: decrypted %q, %d messages", p.name, hv.show("haven.decrypted"), len(hv.messages()))
		}
	}
}

// all returns the show (or, if empty, value) attributes of every field
// named name under n, joined by commas.
func (n *pdmlNode) all(name string) string {
	var out []string
	var walk func(*pdmlNode)
	walk = func(m *pdmlNode) {
		for i := range m.Fields {
			f := &m.Fields[i]
			if f.Name == name {
				v := f.Show
				if f.Value != "" && (strings.Contains(v, ":") || v == "") && !strings.Contains(name, "ipv6") {
					v = f.Value // bytes: plain hex
				}
				out = append(out, v)
			}
			walk(f)
		}
	}
	walk(n)
	return strings.Join(out, ",")
}

// checkHeader compares the header fields tshark shows with the packet's
// first 40 bytes.
func checkHeader(t *testing.T, name string, hv *pdmlNode, raw []byte) {
	t.Helper()
	var h wire.Header
	if err := h.Parse(raw); err != nil {
		t.Fatalf("%s: the test's own packet does not parse: %v", name, err)
	}
	want := map[string]string{
		"haven.proto_id": hex.EncodeToString(raw[0:8]),
		"haven.flags":    fmt.Sprintf("0x%02x", raw[8]),
		"haven.length":   fmt.Sprint(h.Length),
		"haven.channel":  fmt.Sprint(h.Channel),
		"haven.dst_id":   hex.EncodeToString(h.Destination[:]),
		"haven.src_id":   hex.EncodeToString(h.Source[:]),
		"haven.pn":       fmt.Sprint(h.PacketNumber),
		"haven.suite":    h.Suite.String(),
	}
	for f, v := range want {
		if got := hv.all(f); got != v {
			t.Errorf("%s: %s = %q, want %q", name, f, got, v)
		}
	}
}
