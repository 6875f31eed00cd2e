package wireshark

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/wire"
)

// TestCaptureRekey: a session whose keys change several times while it
// carries streams (the rekey threshold is lowered to 32 packets, which
// the public API does not offer, so the endpoints are made directly). The
// key log then holds several key sets for the same peer ids, under both K
// values; the dissector must decrypt every transport packet with the right
// one, and the streams must reassemble byte for byte.
func TestCaptureRekey(t *testing.T) {
	tsharkPath(t)
	dir := t.TempDir()
	keylog := filepath.Join(dir, "keys.log")
	f, err := os.OpenFile(keylog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lim := secure.Limits{RekeyAfterMessages: 32, KeyLog: secure.NewKeyLog(f)}
	loopback := netip.MustParseAddrPort("127.0.0.1:0")
	server, err := endpoint.Listen("udp4", loopback, endpoint.Config{Accept: true, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close(wire.CloseNormal, "")
	svc, err := server.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := 0; i < 100; i++ { // until the server closes
			st, err := svc.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				io.Copy(st, st)
				st.CloseWrite()
				st.Close()
			}()
		}
	}()
	rec := &recorder{}
	relay := newUDPRelay(t, server.LocalAddr(), rec)
	client, err := endpoint.Listen("udp4", loopback, endpoint.Config{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(wire.CloseNormal, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := client.Session(ctx, server.PublicKey(), relay.addr())
	if err != nil {
		t.Fatal(err)
	}
	// Echo 128 KiB per channel until the session has rekeyed twice.
	var sentData [][]byte
	for round := 0; round < 40 && s.KeySets() < 3; round++ {
		st, err := s.OpenStream("", 3)
		if err != nil {
			t.Fatal(err)
		}
		data := pattern(128<<10, byte(round))
		sentData = append(sentData, data)
		go func() {
			st.Write(data)
			st.CloseWrite()
		}()
		st.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := io.ReadAll(st)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round %d: echo of %d bytes: %d back, %v", round, len(data), len(got), err)
		}
		st.Close()
	}
	if s.KeySets() < 3 {
		t.Fatalf("the session installed %d key sets, want at least 3", s.KeySets())
	}
	relay.close()
	recs := rec.records()
	capture := filepath.Join(dir, "rekey.pcap")
	writePcap(t, capture, recs)
	pkts := udpPackets(recs, relay.addr().String())

	frames := pdml(t, capture, "-o", "haven.keylog_file:"+keylog)
	if len(frames) != len(pkts) {
		t.Fatalf("%d frames decoded, %d captured", len(frames), len(pkts))
	}
	inits := 0
	phases := map[bool]map[string]bool{}   // direction → K values seen
	keyLines := map[bool]map[string]bool{} // direction → key log lines used
	streams := map[string]*reassembly{}
	for i, p := range pkts {
		name := fmt.Sprintf("packet %d", i+1)
		if len(frames[i]) != 1 {
			t.Fatalf("%s: %d Haven packets in the frame", name, len(frames[i]))
		}
		n := &frames[i][0]
		checkHeader(t, name, n, p.raw)
		if wire.Flags(p.raw[8])&wire.FlagHandshake != 0 {
			if n.messages()[0].show("haven.msg.type") == "0x01" { // either side may rekey
				inits++
			}
			continue
		}
		if n.show("haven.decrypted") != "1" {
			t.Fatalf("%s (K %v): %s", name, p.raw[8]&2 != 0, n.show("haven.decryption"))
		}
		if phases[p.toServer] == nil {
			phases[p.toServer] = map[string]bool{}
		}
		phases[p.toServer][n.show("haven.flags.key_phase")] = true
		if keyLines[p.toServer] == nil {
			keyLines[p.toServer] = map[string]bool{}
		}
		keyLines[p.toServer][n.show("haven.keylog_line")] = true
		for _, m := range n.messages() {
			if m.show("haven.msg.type") != "0x30" {
				continue
			}
			k := fmt.Sprint(n.show("haven.channel"), p.toServer)
			if streams[k] == nil {
				streams[k] = &reassembly{}
			}
			off, _ := strconv.Atoi(m.show("haven.stream.offset"))
			if err := streams[k].add(off, m.all("haven.stream.data"), m.show("haven.stream.fin") == "1"); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	if inits < 3 {
		t.Errorf("%d handshake initiations captured, want 3 (the session and two rekeys)", inits)
	}
	for _, up := range []bool{true, false} {
		if !phases[up]["0"] || !phases[up]["1"] || len(keyLines[up]) < 2 {
			t.Errorf("to server %v: K values %v, key log lines %v: want both K values, several keys", up, phases[up], keyLines[up])
		}
	}
	for i, data := range sentData {
		ch := strconv.Itoa(2*i + 1)
		for _, up := range []bool{true, false} {
			r := streams[fmt.Sprint(ch, up)]
			if r == nil || !r.done() || !bytes.Equal(r.data, data) {
				t.Errorf("channel %s (to server %v): %v, want the %d bytes sent (%s…)", ch, up, r, len(data), hex.EncodeToString(data[:4]))
			}
		}
	}
}
