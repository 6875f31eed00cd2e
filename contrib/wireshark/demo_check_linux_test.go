package wireshark

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/havenproto/haven/wire"
)

// demoMessages are the messages a capture of the demo must show, each
// with why (§4.2 ids, as tshark prints them). Others may occur (PING,
// BLOCKED, depending on timing).
var demoMessages = map[string]string{
	"0x01": "HANDSHAKE_INIT: each session starts with one",
	"0x02": "HANDSHAKE_RESPONSE: and its answer",
	"0x08": "ACK",
	"0x10": "CLOSE: the client closes each session (its Dialer, its datagram socket)",
	"0x11": "MAX_DATA: the largest channel sends more than the 256 KiB initial channel window, both ways",
	"0x20": "OPEN: five stream channels and a datagram channel",
	"0x21": "ACCEPT: the server's answers",
	"0x30": "STREAM: the echoed bytes",
	"0x31": "DATAGRAM: the echoed datagrams",
}

// session is one of the demo's sessions: the server and a client key.
type session struct {
	client wire.PublicKey
	name   string
}

// sessionOf returns the session packet p belongs to and whether it goes to
// the server, from the authentication tags of its peer ids (PROTOCOL.md
// §3.2), or ok false.
func sessionOf(p *wirePacket, server wire.PublicKey, sessions []session) (s int, up, ok bool) {
	var h wire.Header
	if h.Parse(p.raw) != nil {
		return 0, false, false
	}
	st := h.Suite.AuthTag(server)
	for i, se := range sessions {
		ct := h.Suite.AuthTag(se.client)
		switch {
		case h.Source.Auth() == ct && h.Destination.Auth() == st:
			return i, true, true
		case h.Source.Auth() == st && h.Destination.Auth() == ct:
			return i, false, true
		}
	}
	return 0, false, false
}

// checkDemo checks a capture of the demo:
//
//   - the test's own reading of the capture (havenPackets): every UDP and
//     TCP payload is Haven, and every packet belongs to one of the demo's
//     sessions (the server's key and the clients' keys, from the demo's
//     output and the server's traces, give the peer ids' tags), each of
//     which has its handshake in the capture;
//   - the capture has every packet of the demo's sessions: each captured
//     transport packet is one its sender's engine built (its trace), with
//     the same packet number, channel and length; every packet each side
//     received is there; a packet built but not there was declared lost by
//     its sender (the path MTU probes larger than the MTU, which the kernel
//     refuses) or is among the server's last (a CLOSE as it shuts down,
//     after the client left); the traces count at least what the demo's
//     table prints, and there are hundreds;
//   - tshark with the dissector and the key log shows in each frame the
//     packets the test cut from it, each header field as sent; the
//     handshake messages with their fields; every transport packet
//     decrypted with its tag verified (with a key of the key log for its
//     peer ids); the messages of demoMessages, each ACK acknowledging a
//     captured packet; the bulk channels' bytes, reassembled from the
//     STREAM messages, are the demo's (its ChaCha8 streams, of -scale
//     times the default sizes) both ways, the probe channel carries its
//     round trips, the datagrams are the demo's, echoed; and no expert info
//     (malformed, bad header, bad tag, no key);
//   - without the key log, tshark still shows every header field as sent,
//     and every payload as its encrypted bytes and tag.
func checkDemo(t *testing.T, run *demoRun) {
	t.Helper()
	o := run.out
	// The sessions: the server's traces name their clients.
	var sessions []session
	for _, tr := range run.traces {
		if tr.server {
			sessions = append(sessions, session{client: tr.peer, name: tr.file})
		}
	}
	wantSessions := 2 // the Dialer's, and the datagram socket's
	if run.tcp {
		wantSessions = 1 // the datagram channel rides the Dialer's session
	}
	if len(sessions) != wantSessions || len(run.traces) != 2*wantSessions {
		t.Fatalf("%d traces, %d of them the server's; want %d sessions", len(run.traces), len(sessions), wantSessions)
	}
	slices.SortFunc(sessions, func(a, b session) int { // the Dialer's first
		return boolInt(b.client == o.client) - boolInt(a.client == o.client)
	})
	if sessions[0].client != o.client {
		t.Fatalf("no server trace has the demo's client %v as its peer", o.client)
	}

	// Every packet belongs to a session; group the transport packets by
	// session and direction.
	bySide := map[[2]int][]*wirePacket{} // {session, up} → transport packets
	handshakes := map[[2]int]int{}
	for i := range run.pkts {
		p := &run.pkts[i]
		s, up, ok := sessionOf(p, o.server, sessions)
		if !ok {
			t.Fatalf("frame %d: a packet of none of the demo's sessions: % x", p.frame+1, p.raw[:40])
		}
		k := [2]int{s, boolInt(up)}
		if wire.Flags(p.raw[wire.OffFlags])&wire.FlagHandshake != 0 {
			handshakes[k]++
			continue
		}
		bySide[k] = append(bySide[k], p)
	}

	// Each trace is one direction's sender: find which.
	limit := run.maxUDP
	if run.tcp {
		limit = math.MaxInt // a stream carries any size
	}
	senders := map[[2]int]*traceSide{}
	matches := map[[2]int]traceMatch{}
	for i := range run.traces {
		tr := &run.traces[i]
		var errs []string
		for s, se := range sessions {
			k := [2]int{s, boolInt(!tr.server)}
			if senders[k] != nil || tr.server && tr.peer != se.client || !tr.server && tr.peer != o.server {
				continue
			}
			m, err := matchTrace(tr, bySide[k], limit)
			if err != nil {
				errs = append(errs, fmt.Sprintf("as %s: %v", se.name, err))
				continue
			}
			senders[k], matches[k] = tr, m
			break
		}
		if !slices.Contains(slices.Collect(maps.Values(senders)), tr) {
			t.Fatalf("trace %s matches no session's captured packets: %s", tr.file, strings.Join(errs, "; "))
		}
	}
	// Every packet a side received is in the capture. Only the server,
	// which closes last, may have packets missing at the end.
	for k, tr := range senders {
		peer := senders[[2]int{k[0], 1 - k[1]}]
		m := matches[k]
		t.Logf("%s: %d packets sent, all captured but %d declared lost (%d of them path MTU probes over the MTU) and %d at the end %v", tr.file, len(tr.sent), len(m.lost), m.refused, len(m.late), m.late)
		if len(m.late) > 0 && !tr.server {
			t.Errorf("%s: the client's last packets %v are not in the capture", tr.file, m.late)
		}
		have := map[uint64]bool{}
		for _, p := range bySide[[2]int{k[0], 1 - k[1]}] {
			have[binary.LittleEndian.Uint64(p.raw[wire.OffPacketNumber:])] = true
		}
		for _, pn := range tr.received {
			if !have[pn] {
				t.Fatalf("%s received packet %d from %s, which is not in the capture", tr.file, pn, peer.file)
			}
		}
	}
	// The demo's table, printed before the sessions closed, counts fewer.
	if tr := senders[[2]int{0, 1}]; len(tr.sent) < o.sent || len(tr.received) < o.received {
		t.Errorf("%s: %d packets sent, %d received; the demo printed %d and %d before the end", tr.file, len(tr.sent), len(tr.received), o.sent, o.received)
	}
	for s := range sessions {
		for _, up := range []int{0, 1} {
			if handshakes[[2]int{s, up}] < 1 {
				t.Errorf("session %d (to the server %v): no handshake packet", s, up == 1)
			}
		}
	}
	if n := len(bySide[[2]int{0, 0}]) + len(bySide[[2]int{0, 1}]); n < 200 {
		t.Errorf("the Dialer's session has %d transport packets in the capture, want hundreds", n)
	}
	checkDemoDecode(t, run, sessions)
	checkDemoBare(t, run)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// traceMatch is what matchTrace found missing from the capture.
type traceMatch struct {
	lost    []uint64 // declared lost by the sender
	refused int      // of them, path MTU probes over the MTU
	late    []uint64 // the sender's last packets, on channel 0
}

// matchTrace checks pkts, the captured transport packets of one direction
// of one session, against tr, the trace of their sender: each is a packet
// the sender built, with its packet number, length and channel. A packet
// the sender built may be missing only if the sender declared it lost (the
// path MTU probes larger than limit, on channel 0, which the kernel
// refuses, and what a failed write takes with it), or if it is one of the
// sender's last packets and on channel 0 (a CLOSE as its socket closes,
// to a peer that has gone).
func matchTrace(tr *traceSide, pkts []*wirePacket, limit int) (m traceMatch, err error) {
	byPN := map[uint64]*wirePacket{}
	for _, p := range pkts {
		pn := binary.LittleEndian.Uint64(p.raw[wire.OffPacketNumber:])
		if byPN[pn] != nil {
			return m, fmt.Errorf("packet number %d twice in the capture (frames %d and %d)", pn, byPN[pn].frame+1, p.frame+1)
		}
		byPN[pn] = p
	}
	for _, s := range tr.sent {
		p := byPN[s.pn]
		switch {
		case p == nil && tr.lost[s.pn]:
			m.lost = append(m.lost, s.pn)
			if s.length > limit {
				m.refused++
			}
			continue
		case p == nil && s.channel == 0:
			m.late = append(m.late, s.pn)
			continue
		case p == nil:
			return m, fmt.Errorf("packet %d (%d bytes, channel %d) is not in the capture, nor declared lost", s.pn, s.length, s.channel)
		case s.length > limit:
			return m, fmt.Errorf("packet %d of %d bytes, over the MTU, is in the capture", s.pn, s.length)
		case len(m.late) > 0:
			return m, fmt.Errorf("packet %d (channel 0) is not in the capture, nor declared lost, but packet %d after it is", m.late[0], s.pn)
		}
		if ch := binary.LittleEndian.Uint32(p.raw[wire.OffChannel:]); len(p.raw) != s.length || ch != s.channel {
			return m, fmt.Errorf("packet %d: captured %d bytes on channel %d, sent %d on %d", s.pn, len(p.raw), ch, s.length, s.channel)
		}
		delete(byPN, s.pn)
	}
	if len(byPN) > 0 {
		pns := slices.Sorted(maps.Keys(byPN))
		return m, fmt.Errorf("%d captured packets are not in the trace: packet numbers %v", len(pns), pns[:min(len(pns), 10)])
	}
	return m, nil
}

// chanKey is one direction of one channel of one session.
type chanKey struct {
	session int
	channel string
	up      bool
}

// checkDemoDecode runs tshark with the key log and checks each packet it
// shows against the test's own (see checkDemo).
func checkDemoDecode(t *testing.T, run *demoRun, sessions []session) {
	t.Helper()
	o := run.out
	frames := pdml(t, run.capture, "-o", "haven.keylog_file:"+run.keylog, "-J", "haven")
	if len(frames) != run.frames {
		t.Fatalf("tshark shows %d frames, the capture holds %d", len(frames), run.frames)
	}
	byFrame := make([][]*wirePacket, run.frames)
	for i := range run.pkts {
		byFrame[run.pkts[i].frame] = append(byFrame[run.pkts[i].frame], &run.pkts[i])
	}
	logged := keyLogIDs(t, run.keylog)
	pns := map[[2]int]map[uint64]bool{} // {session, up} → captured packet numbers
	for i := range run.pkts {
		p := &run.pkts[i]
		s, up, _ := sessionOf(p, o.server, sessions)
		k := [2]int{s, boolInt(up)}
		if pns[k] == nil {
			pns[k] = map[uint64]bool{}
		}
		pns[k][binary.LittleEndian.Uint64(p.raw[wire.OffPacketNumber:])] = true
	}
	seen := map[string]int{}
	maxData := map[bool]int{}
	closed := map[int]bool{}
	streams := map[chanKey]*reassembly{}
	dgrams := map[chanKey]map[uint64][]byte{}
	opened := map[chanKey]string{} // client's OPEN: channel type
	accepted := map[chanKey]bool{} // server's ACCEPT
	decrypted := 0
	for fi, f := range frames {
		if len(f) != len(byFrame[fi]) {
			t.Fatalf("frame %d: tshark shows %d Haven packets, the test cut %d from it", fi+1, len(f), len(byFrame[fi]))
		}
		for j, p := range byFrame[fi] {
			name := fmt.Sprintf("frame %d packet %d", fi+1, j+1)
			n := &f[j]
			checkHeader(t, name, n, p.raw)
			for _, e := range []string{"haven.malformed", "haven.bad_header", "haven.bad_tag", "haven.no_key"} {
				if n.field(e) != nil {
					t.Fatalf("%s: expert info %s (%s)", name, e, n.show("haven.messages"))
				}
			}
			var h wire.Header
			h.Parse(p.raw)
			s, up, _ := sessionOf(p, o.server, sessions)
			ms := n.messages()
			if h.IsHandshake() {
				want := map[bool]string{true: "0x01", false: "0x02"}[up]
				if len(ms) != 1 || ms[0].show("haven.msg.type") != want ||
					ms[0].all("haven.hs.ephemeral") != hex.EncodeToString(p.raw[48:80]) || ms[0].field("haven.hs.mac1") == nil {
					t.Fatalf("%s: handshake packet decoded as %q", name, n.show("haven.messages"))
				}
				seen[want]++
				continue
			}
			if ids := hex.EncodeToString(h.Source[:]) + " " + hex.EncodeToString(h.Destination[:]); !logged[ids] {
				t.Fatalf("%s: peer ids %s not in the key log", name, ids)
			}
			if st := n.show("haven.decryption"); n.show("haven.decrypted") != "1" || !strings.HasPrefix(st, "decrypted, tag verified") {
				t.Fatalf("%s: not decrypted: %q", name, st)
			}
			decrypted++
			if len(ms) == 0 {
				t.Fatalf("%s: decrypted, but no message", name)
			}
			k := chanKey{s, fmt.Sprint(h.Channel), up}
			for _, m := range ms {
				id := m.show("haven.msg.type")
				seen[id]++
				switch id {
				case "0x08": // acknowledges a packet the other side sent, so captured
					largest, err := strconv.ParseUint(m.show("haven.ack.largest"), 10, 64)
					if err != nil || !pns[[2]int{s, boolInt(!up)}][largest] {
						t.Fatalf("%s: ACK of %q, no packet of the other direction", name, m.show("haven.ack.largest"))
					}
				case "0x30":
					r := streams[k]
					if r == nil {
						r = &reassembly{}
						streams[k] = r
					}
					off, _ := strconv.Atoi(m.show("haven.stream.offset"))
					if err := r.add(off, m.all("haven.stream.data"), m.show("haven.stream.fin") == "1"); err != nil {
						t.Fatalf("%s: channel %s: %v", name, k.channel, err)
					}
				case "0x31":
					data, _ := hex.DecodeString(m.all("haven.datagram.data"))
					if m.show("haven.datagram.frag") != "0" || len(data) < 8 {
						t.Fatalf("%s: DATAGRAM of %d bytes, fragment %q: the demo's fit one packet", name, len(data), m.show("haven.datagram.frag"))
					}
					if dgrams[k] == nil {
						dgrams[k] = map[uint64][]byte{}
					}
					seq := binary.BigEndian.Uint64(data) // the demo's numbering
					if dgrams[k][seq] != nil {
						t.Fatalf("%s: datagram %d twice", name, seq)
					}
					dgrams[k][seq] = data
				case "0x20":
					if up {
						opened[k] = m.show("haven.open.type")
					}
				case "0x21":
					if w, _ := strconv.Atoi(m.show("haven.accept.window")); w <= 0 {
						t.Fatalf("%s: ACCEPT with window %q", name, m.show("haven.accept.window"))
					}
					if !up {
						accepted[chanKey{s, k.channel, true}] = true
					}
				case "0x10":
					if up && k.channel == "0" && m.show("haven.close.code") == "0" {
						closed[s] = true
					}
				case "0x11":
					if v, _ := strconv.Atoi(m.show("haven.max_data")); v <= 0 { // bytes, or datagrams on a datagram channel
						t.Fatalf("%s: MAX_DATA of %q", name, m.show("haven.max_data"))
					}
					if s == 0 {
						maxData[up]++
					}
				}
			}
		}
	}
	t.Logf("%d frames, %d Haven packets (%d transport, all decrypted); messages by id: %v", run.frames, len(run.pkts), decrypted, seen)
	for id, why := range demoMessages {
		if seen[id] == 0 {
			t.Errorf("no message %s (%s) in the capture", id, why)
		}
	}
	if seen["0x01"] < len(sessions) || seen["0x02"] < len(sessions) {
		t.Errorf("handshakes: %d initiations, %d responses for %d sessions", seen["0x01"], seen["0x02"], len(sessions))
	}
	for s := range sessions {
		if !closed[s] {
			t.Errorf("session %d: no CLOSE (code 0) on channel 0 from the client", s)
		}
	}
	sizes := make([]int64, len(demoDefaults))
	for i, d := range demoDefaults {
		sizes[i] = max(1, int64(float64(d)*demoScale))
	}
	if slices.Max(sizes) <= 256<<10 || maxData[true] == 0 || maxData[false] == 0 {
		t.Errorf("MAX_DATA in the Dialer's session: %d to the server, %d back; the largest channel sends %d bytes", maxData[true], maxData[false], slices.Max(sizes))
	}
	checkDemoChannels(t, run, opened, accepted, streams, dgrams, sizes)
}

// checkDemoChannels checks the channels the client opened and what
// crossed them (see checkDemo).
func checkDemoChannels(t *testing.T, run *demoRun, opened map[chanKey]string, accepted map[chanKey]bool,
	streams map[chanKey]*reassembly, dgrams map[chanKey]map[uint64][]byte, sizes []int64) {
	t.Helper()
	o := run.out
	var streamChans, dgramChans []chanKey
	for k, typ := range opened {
		if !accepted[k] {
			t.Errorf("session %d channel %s: opened, never accepted", k.session, k.channel)
		}
		switch {
		case typ == "1" && k.session == 0:
			streamChans = append(streamChans, k)
		case typ == "2" && k.session == boolInt(!run.tcp):
			dgramChans = append(dgramChans, k)
		default:
			t.Errorf("session %d channel %s: OPEN of type %s", k.session, k.channel, typ)
		}
	}
	if len(streamChans) != len(sizes)+1 || len(dgramChans) != 1 {
		t.Fatalf("channels opened: %d stream (want %d: the bulk ones and the probe), %d datagram (want 1)", len(streamChans), len(sizes)+1, len(dgramChans))
	}
	// The bulk channels: each sends a ChaCha8 stream seeded by its row
	// number, as cmd/haven's echoVerified does, and gets it back.
	bulk := map[int]bool{}
	probe := 0
	for _, k := range streamChans {
		upr, downr := streams[k], streams[chanKey{k.session, k.channel, false}]
		row := -1
		for i, size := range sizes {
			if upr != nil && upr.done() && int64(len(upr.data)) == size && bytes.Equal(upr.data, chacha8Bytes(uint64(i+1), size)) {
				row = i
			}
		}
		if row < 0 {
			// The probe channel: 32-byte round trips, idle then under load;
			// it may end without a FIN.
			want := 32 * (o.idle + o.loaded)
			if probe++; !contiguous(upr, want) || !contiguous(downr, want) || !bytes.Equal(upr.data, downr.data) {
				t.Errorf("channel %s: %v sent, %v back; neither a bulk channel nor the probe's %d bytes echoed", k.channel, upr, downr, want)
			}
			continue
		}
		bulk[row] = true
		if !downr.done() || !bytes.Equal(downr.data, upr.data) {
			t.Errorf("channel %s (bulk, %d bytes): the echo is %v", k.channel, sizes[row], downr)
		}
	}
	if len(bulk) != len(sizes) || probe != 1 {
		t.Errorf("bulk channels found: %v of %d; probe channels: %d", bulk, len(sizes), probe)
	}
	// The datagrams: numbered from 1, then a timestamp, then the pattern of
	// cmd/haven's newDatagramRun; each echoed as sent.
	k := dgramChans[0]
	up, down := dgrams[k], dgrams[chanKey{k.session, k.channel, false}]
	if len(up) != o.datagrams || len(down) != o.datagrams {
		t.Fatalf("datagram channel %s: %d datagrams sent, %d back; the demo printed %d", k.channel, len(up), len(down), o.datagrams)
	}
	for seq := uint64(1); seq <= uint64(o.datagrams); seq++ {
		d := up[seq]
		ok := len(d) == o.datagramSize && bytes.Equal(down[seq], d)
		for i := 16; ok && i < len(d); i++ {
			ok = d[i] == byte(i*31+7)
		}
		if !ok {
			t.Fatalf("datagram %d: %d bytes sent, %d back, not the demo's", seq, len(d), len(down[seq]))
		}
	}
}

// chacha8Bytes is what cmd/haven's demo sends on a bulk channel.
func chacha8Bytes(seed uint64, n int64) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// contiguous reports whether r holds exactly n bytes from offset 0.
func contiguous(r *reassembly, n int) bool {
	if r == nil || len(r.data) != n {
		return false
	}
	return !slices.Contains(r.have, false)
}

// checkDemoBare: without the key log, tshark's field output shows every
// packet's header as sent, its payload encrypted and its tag.
func checkDemoBare(t *testing.T, run *demoRun) {
	t.Helper()
	cols := []string{"haven.proto_id", "haven.flags", "haven.length", "haven.channel", "haven.dst_id",
		"haven.src_id", "haven.pn", "haven.decrypted", "haven.payload", "haven.tag"}
	args := []string{"-o", "haven.keylog_file:", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, c := range cols {
		args = append(args, "-e", c)
	}
	lines := strings.Split(strings.TrimSuffix(string(tshark(t, run.capture, args...)), "\n"), "\n")
	if len(lines) != run.frames {
		t.Fatalf("-T fields: %d lines for %d frames", len(lines), run.frames)
	}
	want := make([][]string, run.frames)
	for i := range want {
		want[i] = make([]string, len(cols))
	}
	for _, p := range run.pkts {
		var h wire.Header
		h.Parse(p.raw)
		vals := []string{hex.EncodeToString(p.raw[:8]), fmt.Sprintf("0x%02x", p.raw[8]), fmt.Sprint(h.Length), fmt.Sprint(h.Channel),
			hex.EncodeToString(h.Destination[:]), hex.EncodeToString(h.Source[:]), fmt.Sprint(h.PacketNumber)}
		if h.IsHandshake() {
			vals = append(vals, "", "", "")
		} else {
			vals = append(vals, "0", hex.EncodeToString(p.raw[40:len(p.raw)-16]), hex.EncodeToString(p.raw[len(p.raw)-16:]))
		}
		for c, v := range vals {
			if v == "" {
				continue
			}
			if want[p.frame][c] != "" {
				want[p.frame][c] += ","
			}
			want[p.frame][c] += v
		}
	}
	for i, l := range lines {
		if got := strings.Split(l, "\t"); !slices.Equal(got, want[i]) {
			t.Fatalf("frame %d without the key log:\n got %.400q\nwant %.400q", i+1, got, want[i])
		}
	}
}
