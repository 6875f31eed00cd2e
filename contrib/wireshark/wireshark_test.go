package wireshark

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	hnet "github.com/havenproto/haven/net"
	"github.com/havenproto/haven/wire"
)

// capPacket is one Haven packet of a capture, as the relay passed it.
type capPacket struct {
	raw      []byte
	toServer bool
}

// udpPackets: each datagram is one packet.
func udpPackets(recs []record, server string) []capPacket {
	var out []capPacket
	for _, r := range recs {
		out = append(out, capPacket{raw: r.payload, toServer: r.dst.String() == server})
	}
	return out
}

// tcpPackets cuts each direction of each connection into packets by
// their length fields (§8), in the order in which they complete, which is
// the order a dissector reassembling TCP shows them in.
func tcpPackets(t *testing.T, recs []record, server string) []capPacket {
	t.Helper()
	bufs := map[string][]byte{}
	var out []capPacket
	for _, r := range recs {
		k := fmt.Sprint(r.conn, r.src)
		b := append(bufs[k], r.payload...)
		for i := 0; i < 1<<16 && len(b) >= wire.HeaderLen; i++ {
			n := wire.HeaderLen + int(binary.LittleEndian.Uint16(b[10:12]))
			if len(b) < n {
				break
			}
			out = append(out, capPacket{raw: bytes.Clone(b[:n]), toServer: r.dst.String() == server})
			b = b[n:]
		}
		bufs[k] = b
	}
	for k, b := range bufs {
		if len(b) != 0 {
			t.Fatalf("TCP stream %s ends in the middle of a packet (%d bytes)", k, len(b))
		}
	}
	return out
}

// captureSetup is what both capture tests start from: tshark found, a
// directory for the capture, a key log that the sessions of this test
// write (HAVEN_KEYLOGFILE), an echo server, and an empty recorder for the
// relay in front of it.
func captureSetup(t *testing.T) (dir, keylog string, server *hnet.Addr, rec *recorder) {
	t.Helper()
	tsharkPath(t)
	dir = t.TempDir()
	keylog = filepath.Join(dir, "keys.log")
	t.Setenv(hnet.KeyLogEnv, keylog)
	server = startServer(t, "haven4").Addr().(*hnet.Addr)
	return dir, keylog, server, &recorder{}
}

// TestCaptureUDP: a capture of real sessions over UDP (the default Config,
// and one with the other cipher), decoded by tshark with the dissector
// found by its heuristics: see checkCapture. Then, without the key log,
// tshark's field output (-T fields) still shows every header as sent and
// every transport payload as encrypted bytes; with every key of the log
// changed, nothing decrypts (the tags are verified); with the port
// preference and no heuristics every frame is still Haven, and with
// neither none is.
func TestCaptureUDP(t *testing.T) {
	dir, keylog, server, rec := captureSetup(t)
	relay := newUDPRelay(t, server.Addr, rec)
	s1 := runSession(t, "haven4", server.Key, relay.addr(), hnet.CipherAuto, true)
	other := hnet.CipherChaCha20Poly1305
	if s1.suite == wire.SuiteChaChaPoly {
		other = hnet.CipherAES256GCM
	}
	s2 := runSession(t, "haven4", server.Key, relay.addr(), other, false)
	relay.close()
	recs := rec.records()
	capture := filepath.Join(dir, "udp.pcap")
	writePcap(t, capture, recs)
	pkts := udpPackets(recs, relay.addr().String())
	checkCapture(t, capture, keylog, pkts, []sent{s1, s2})

	// Field output without a key log: one line per frame.
	cols := []string{"haven.proto_id", "haven.flags", "haven.length", "haven.channel", "haven.dst_id",
		"haven.src_id", "haven.pn", "haven.decrypted", "haven.msg.type", "haven.payload", "haven.tag"}
	args := []string{"-o", "haven.keylog_file:", "-T", "fields", "-E", "separator=/t"}
	for _, c := range cols {
		args = append(args, "-e", c)
	}
	lines := strings.Split(strings.TrimSuffix(string(tshark(t, capture, args...)), "\n"), "\n")
	if len(lines) != len(pkts) {
		t.Fatalf("-T fields: %d lines for %d frames", len(lines), len(pkts))
	}
	for i, l := range lines {
		f := strings.Split(l, "\t")
		p := pkts[i].raw
		var hd wire.Header
		hd.Parse(p)
		want := []string{hex.EncodeToString(p[:8]), fmt.Sprintf("0x%02x", p[8]), fmt.Sprint(hd.Length), fmt.Sprint(hd.Channel),
			hex.EncodeToString(p[16:24]), hex.EncodeToString(p[24:32]), fmt.Sprint(hd.PacketNumber)}
		if hd.IsHandshake() {
			want = append(want, "", fmt.Sprintf("0x%02x", p[40]), "", "")
		} else {
			want = append(want, "0", "", hex.EncodeToString(p[40:len(p)-16]), hex.EncodeToString(p[len(p)-16:]))
		}
		if !slices.Equal(f, want) {
			t.Fatalf("frame %d without a key log:\n got %q\nwant %q", i+1, f, want)
		}
	}

	// A key log whose every key is wrong: the tags fail, nothing decrypts.
	raw, err := os.ReadFile(keylog)
	if err != nil {
		t.Fatal(err)
	}
	var bad strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		f := strings.Fields(l)
		if f[6][0] == '0' { // another first hex digit
			f[6] = "1" + f[6][1:]
		} else {
			f[6] = "0" + f[6][1:]
		}
		bad.WriteString(strings.Join(f, " ") + "\n")
	}
	badLog := filepath.Join(dir, "bad.log")
	if err := os.WriteFile(badLog, []byte(bad.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	st := tshark(t, capture, "-o", "haven.keylog_file:"+badLog, "-T", "fields", "-e", "haven.decryption")
	n := 0
	for _, l := range strings.Split(strings.TrimSuffix(string(st), "\n"), "\n") {
		if l == "" {
			continue // a handshake packet
		}
		n++
		if !strings.HasPrefix(l, "not decrypted: the tag verifies under none") {
			t.Fatalf("with wrong keys: %q", l)
		}
	}
	if n == 0 {
		t.Fatal("with wrong keys: no transport packet")
	}

	// The port preference alone (heuristics off), then neither.
	port := strconv.Itoa(int(relay.addr().Port()))
	for _, c := range []struct {
		port string
		want int
	}{{port, len(pkts)}, {"0", 0}} {
		out := tshark(t, capture, "-o", "haven.heuristics:FALSE", "-o", "haven.port:"+c.port, "-T", "fields", "-e", "haven.pn")
		got := 0
		for _, l := range strings.Split(string(out), "\n") {
			if l != "" {
				got++
			}
		}
		if got != c.want {
			t.Errorf("heuristics off, haven.port %s: %d frames decoded as Haven, want %d", c.port, got, c.want)
		}
	}
}

// TestCaptureTCP: the same checks on a session over the TCP fallback
// ("haven4+tcp", docs/PROTOCOL.md §8), where several Haven packets share
// a TCP segment and one packet may span several: the dissector reassembles
// them by their length fields.
func TestCaptureTCP(t *testing.T) {
	dir, keylog, server, rec := captureSetup(t)
	relay := newTCPRelay(t, server.Addr, rec)
	s := runSession(t, "haven4+tcp", server.Key, relay.addr(), hnet.CipherAuto, true)
	relay.close()
	recs := rec.records()
	capture := filepath.Join(dir, "tcp.pcap")
	writePcap(t, capture, recs)
	checkCapture(t, capture, keylog, tcpPackets(t, recs, relay.addr().String()), []sent{s})
}
