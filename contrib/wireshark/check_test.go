package wireshark

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/havenproto/haven/wire"
)

// Messages every captured session must show (§4.2 ids, as tshark prints
// them), each with why.
var requiredMessages = map[string]string{
	"0x01": "HANDSHAKE_INIT: each session starts with one",
	"0x02": "HANDSHAKE_RESPONSE: and its answer",
	"0x08": "ACK",
	"0x09": "PING: the initiator's key confirmation, keepalives",
	"0x10": "CLOSE: channel 7 closed early, the session closed",
	"0x20": "OPEN: five channels",
	"0x21": "ACCEPT",
	"0x22": "REFUSE: a service nobody serves",
	"0x23": "RESET: the server's answer to channel 7's CLOSE",
	"0x30": "STREAM",
	"0x31": "DATAGRAM",
}

// pnReorder bounds how far below the largest packet number seen in a
// direction a later packet of the capture may be.
const pnReorder = 64

// flow is one direction of one channel of one session, for reassembly.
type flow struct {
	suite   string // protocol id, hex
	channel string
	up      bool // client to server
}

// checkCapture decodes capture with the key log and checks, against the
// packets pkts the relay passed and the sessions sessions it carried:
//
//   - every packet is decoded as Haven, with each header field as sent;
//   - the peer ids carry the client's and the server's authentication tags
//     (PROTOCOL.md §3.2) and the ephemeral values of the key log's lines;
//   - packet numbers grow in each direction of each session (each is new,
//     and none is more than pnReorder below the largest before it);
//   - handshake packets show their message with its fields;
//   - every transport packet is decrypted with its tag verified, and the
//     messages of requiredMessages all occur;
//   - the stream bytes reassembled from haven.stream.data, both ways,
//     equal what the session sent and echoed, ending in a FIN; the
//     datagrams, reassembled from their fragments, are those sent; OPEN
//     names the services dialed, REFUSE answers the one nobody serves, and
//     the session's CLOSE carries its code and reason.
//
// Without the key log every packet still decodes with its header and no
// transport packet is decrypted.
func checkCapture(t *testing.T, capture, keylog string, pkts []capPacket, sessions []sent) {
	t.Helper()
	frames := pdml(t, capture, "-o", "haven.keylog_file:"+keylog)
	var hv []*pdmlNode
	for i := range frames {
		for j := range frames[i] {
			hv = append(hv, &frames[i][j])
		}
	}
	if len(hv) != len(pkts) {
		t.Fatalf("tshark decoded %d Haven packets, the capture holds %d", len(hv), len(pkts))
	}
	bySuite := map[string]sent{}
	for _, s := range sessions {
		id := s.suite.ProtocolID()
		bySuite[hex.EncodeToString(id[:])] = s
	}
	logged := keyLogIDs(t, keylog)
	seen := map[string]int{}
	lastPN := map[string]uint64{}
	pnSeen := map[string]map[uint64]bool{}
	streams := map[flow]*reassembly{}
	dgrams := map[flow]map[uint32][]byte{}
	fragments := map[flow]map[uint32]*reassembly{}
	opened := map[string]string{} // channel → service, client side
	var sessionClose []string
	for i, p := range pkts {
		name := fmt.Sprintf("packet %d", i+1)
		n := hv[i]
		checkHeader(t, name, n, p.raw)
		for _, e := range []string{"haven.malformed", "haven.bad_header", "haven.bad_tag"} {
			if n.field(e) != nil {
				t.Fatalf("%s: expert info %s: %s", name, e, n.show("haven.messages"))
			}
		}
		var h wire.Header
		h.Parse(p.raw)
		proto := hex.EncodeToString(p.raw[:8])
		s, ok := bySuite[proto]
		if !ok {
			t.Fatalf("%s: protocol id %s of no session", name, proto)
		}
		clientTag, serverTag := h.Suite.AuthTag(wire.PublicKey(s.client)), h.Suite.AuthTag(wire.PublicKey(s.server))
		src, dst := clientTag, serverTag
		if !p.toServer {
			src, dst = serverTag, clientTag
		}
		if h.Source.Auth() != src || (h.Destination.Auth() != dst && !(h.IsHandshake() && p.raw[40] == byte(wire.MsgCookieReply))) {
			t.Fatalf("%s: peer ids %v → %v, want tags %x → %x", name, h.Source, h.Destination, src, dst)
		}
		if h.IsHandshake() {
			want := "0x01"
			if !p.toServer {
				want = "0x02"
			}
			ms := n.messages()
			if len(ms) != 1 || ms[0].show("haven.msg.type") != want ||
				ms[0].all("haven.hs.ephemeral") != hex.EncodeToString(p.raw[48:80]) || ms[0].field("haven.hs.mac1") == nil {
				t.Fatalf("%s: handshake packet decoded as %q", name, n.show("haven.messages"))
			}
			seen[want]++
			continue
		}
		ids := hex.EncodeToString(h.Source[:]) + " " + hex.EncodeToString(h.Destination[:])
		if !logged[ids] {
			t.Fatalf("%s: peer ids %s not in the key log", name, ids)
		}
		// Packet numbers grow, but a sender sealing on several cores may
		// put a few on the wire out of order: each is new, and none is
		// far below the largest seen.
		if pnSeen[ids] == nil {
			pnSeen[ids] = map[uint64]bool{}
		}
		if last, ok := lastPN[ids]; pnSeen[ids][h.PacketNumber] || (ok && h.PacketNumber+pnReorder < last) {
			t.Fatalf("%s: packet number %d again, or far below %d, in the same direction", name, h.PacketNumber, last)
		}
		pnSeen[ids][h.PacketNumber] = true
		lastPN[ids] = max(lastPN[ids], h.PacketNumber)
		if st := n.show("haven.decryption"); n.show("haven.decrypted") != "1" || !strings.HasPrefix(st, "decrypted, tag verified") {
			t.Fatalf("%s: not decrypted: %q", name, st)
		}
		ch := fmt.Sprint(h.Channel)
		for _, m := range n.messages() {
			id := m.show("haven.msg.type")
			seen[id]++
			fl := flow{proto, ch, p.toServer}
			switch id {
			case "0x30":
				r := streams[fl]
				if r == nil {
					r = &reassembly{}
					streams[fl] = r
				}
				off, _ := strconv.Atoi(m.show("haven.stream.offset"))
				if err := r.add(off, m.all("haven.stream.data"), m.show("haven.stream.fin") == "1"); err != nil {
					t.Fatalf("%s: channel %s: %v", name, ch, err)
				}
			case "0x31":
				seq, _ := strconv.Atoi(m.show("haven.datagram.seq"))
				data, _ := hex.DecodeString(m.all("haven.datagram.data"))
				if m.show("haven.datagram.frag") == "1" {
					if fragments[fl] == nil {
						fragments[fl] = map[uint32]*reassembly{}
					}
					r := fragments[fl][uint32(seq)]
					if r == nil {
						r = &reassembly{}
						fragments[fl][uint32(seq)] = r
					}
					off, _ := strconv.Atoi(m.show("haven.datagram.frag_offset"))
					total, _ := strconv.Atoi(m.show("haven.datagram.total"))
					r.add(off, hex.EncodeToString(data), off+len(data) == total)
					if !r.done() {
						continue
					}
					data = r.data
				}
				if dgrams[fl] == nil {
					dgrams[fl] = map[uint32][]byte{}
				}
				dgrams[fl][uint32(seq)] = data
			case "0x20":
				if p.toServer && h.Suite == sessions[0].suite {
					opened[ch] = m.show("haven.open.service")
				}
			case "0x22":
				if p.toServer || ch != "5" || m.show("haven.refuse.code") != "1" || !strings.Contains(m.show("haven.refuse.reason"), refusedName) {
					t.Errorf("%s: REFUSE on channel %s: code %s, %q", name, ch, m.show("haven.refuse.code"), m.show("haven.refuse.reason"))
				}
			case "0x10":
				if ch == "0" && p.toServer && h.Suite == sessions[0].suite {
					sessionClose = append(sessionClose, m.show("haven.close.code")+" "+m.show("haven.close.reason"))
				}
			}
		}
	}
	for id, why := range requiredMessages {
		if seen[id] == 0 {
			t.Errorf("no message %s (%s) in the capture; seen: %v", id, why, seen)
		}
	}
	if seen["0x01"] < len(sessions) || seen["0x02"] < len(sessions) {
		t.Errorf("handshakes: %d initiations, %d responses for %d sessions", seen["0x01"], seen["0x02"], len(sessions))
	}
	// Streams: channel 1 and channel 3 of every session, both ways.
	for _, s := range sessions {
		id := s.suite.ProtocolID()
		proto := hex.EncodeToString(id[:])
		for _, c := range []struct {
			ch   string
			data []byte
		}{{"1", s.bulk}, {"3", s.hello}} {
			for _, up := range []bool{true, false} {
				r := streams[flow{proto, c.ch, up}]
				if r == nil || !r.done() || !bytes.Equal(r.data, c.data) {
					t.Errorf("%v channel %s (to server %v): reassembled stream %v, want the %d bytes sent", s.suite, c.ch, up, r, len(c.data))
				}
			}
		}
	}
	// The first session's datagrams (channel 9), both ways.
	s := sessions[0]
	id := s.suite.ProtocolID()
	for _, up := range []bool{true, false} {
		got := dgrams[flow{hex.EncodeToString(id[:]), "9", up}]
		for i, d := range s.datagrams {
			if !bytes.Equal(got[uint32(i)], d) {
				t.Errorf("datagram %d (to server %v): %d bytes decoded, want the %d sent", i, up, len(got[uint32(i)]), len(d))
			}
		}
	}
	if want := map[string]string{"1": "", "3": "echo", "5": refusedName, "7": ""}; !equalMaps(opened, want, "1", "3", "5", "7") {
		t.Errorf("OPEN services by channel: %v, want %v", opened, want)
	}
	if want := fmt.Sprint(closeCode) + " " + closeReason; !slices.Contains(sessionClose, want) {
		t.Errorf("session CLOSE: %q, want %q", sessionClose, want)
	}

	// Without the key log: headers, and nothing decrypted.
	bare := pdml(t, capture, "-o", "haven.keylog_file:")
	k := 0
	for i := range bare {
		for j := range bare[i] {
			if k >= len(pkts) {
				t.Fatal("more Haven packets without the key log than with it")
			}
			n := &bare[i][j]
			checkHeader(t, fmt.Sprintf("packet %d without the key log", k+1), n, pkts[k].raw)
			if wire.Flags(pkts[k].raw[8])&wire.FlagHandshake == 0 &&
				(n.show("haven.decrypted") != "0" || len(n.messages()) != 0 || !strings.HasPrefix(n.show("haven.decryption"), "not decrypted: no key log")) {
				t.Fatalf("packet %d without the key log: %q, %d messages", k+1, n.show("haven.decryption"), len(n.messages()))
			}
			k++
		}
	}
	if k != len(pkts) {
		t.Fatalf("%d Haven packets without the key log, %d with it", k, len(pkts))
	}
}

// keyLogIDs returns "source destination" of every line of a key log, and
// checks that lines are well formed.
func keyLogIDs(t *testing.T, name string) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		f := strings.Fields(l)
		if len(f) != 7 || f[0] != "HAVEN_TRAFFIC_KEY" {
			t.Fatalf("key log line %q", l)
		}
		out[f[2]+" "+f[3]] = true
	}
	return out
}

// reassembly puts a byte stream back together from pieces at offsets;
// overlapping pieces must agree (PROTOCOL.md §5.8).
type reassembly struct {
	data  []byte
	have  []bool
	final int // length at the FIN, or -1
	set   bool
}

func (r *reassembly) add(off int, hexData string, fin bool) error {
	if !r.set {
		r.final, r.set = -1, true
	}
	b, err := hex.DecodeString(hexData)
	if err != nil {
		return err
	}
	end := off + len(b)
	for len(r.data) < end {
		r.data = append(r.data, 0)
		r.have = append(r.have, false)
	}
	for i, c := range b {
		if r.have[off+i] && r.data[off+i] != c {
			return fmt.Errorf("bytes at offset %d differ between two copies", off+i)
		}
		r.data[off+i], r.have[off+i] = c, true
	}
	if fin {
		if r.final >= 0 && r.final != end {
			return fmt.Errorf("two FINs, at %d and %d", r.final, end)
		}
		r.final = end
	}
	return nil
}

// done reports whether every byte up to the FIN has arrived.
func (r *reassembly) done() bool {
	if r == nil || r.final < 0 || len(r.data) != r.final {
		return false
	}
	for _, h := range r.have {
		if !h {
			return false
		}
	}
	return true
}

func (r *reassembly) String() string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("%d bytes, FIN at %d, complete %v", len(r.data), r.final, r.done())
}

func equalMaps(got, want map[string]string, keys ...string) bool {
	for _, k := range keys {
		if v, ok := got[k]; !ok || v != want[k] {
			return false
		}
	}
	return true
}
