package secure

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/havenproto/haven/wire"
)

// keyLogLine is one parsed line of a key log.
type keyLogLine struct {
	proto, src, dst string // hex, as in the packet header
	phase           bool
	align           int
	key             []byte
}

func parseKeyLog(t *testing.T, text string) []keyLogLine {
	t.Helper()
	var out []keyLogLine
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) != 7 || f[0] != KeyLogLabel || (f[4] != "0" && f[4] != "1") {
			t.Fatalf("key log line %q: want 7 fields starting with %s", l, KeyLogLabel)
		}
		align, err := strconv.Atoi(f[5])
		key, kerr := hex.DecodeString(f[6])
		if err != nil || kerr != nil || len(key) != 32 || len(f[1]) != 16 || len(f[2]) != 16 || len(f[3]) != 16 {
			t.Fatalf("key log line %q: bad field", l)
		}
		out = append(out, keyLogLine{proto: f[1], src: f[2], dst: f[3], phase: f[4] == "1", align: align, key: key})
	}
	return out
}

// openWithLog opens a sealed packet the way a capture tool would: with the
// key the log gives for its header's protocol id, peer ids and K bit, and
// an AEAD of the standard library or x/crypto (not the session's code).
// It returns the plaintext after the header, or false.
func openWithLog(lines []keyLogLine, pkt []byte) ([]byte, bool) {
	h := hex.EncodeToString
	proto, dst, src := h(pkt[0:8]), h(pkt[16:24]), h(pkt[24:32])
	k := pkt[wire.OffFlags]&byte(wire.FlagKeyPhase) != 0
	pn := binary.LittleEndian.Uint64(pkt[wire.OffPacketNumber:])
	ad := bytes.Clone(pkt[:wire.HeaderLen])
	ad[10], ad[11] = 0, 0
	for _, l := range lines {
		if l.proto != proto || l.src != src || l.dst != dst || l.phase != k {
			continue
		}
		var aead cipher.AEAD
		nonce := make([]byte, 12)
		if proto == h(wire.ProtocolIDAESGCM[:]) {
			b, _ := aes.NewCipher(l.key)
			aead, _ = cipher.NewGCM(b)
			binary.BigEndian.PutUint64(nonce[4:], pn)
		} else {
			aead, _ = chacha20poly1305.New(l.key)
			binary.LittleEndian.PutUint64(nonce[4:], pn)
		}
		if plain, err := aead.Open(nil, nonce, pkt[wire.HeaderLen:], ad); err == nil {
			return plain, true
		}
	}
	return nil, false
}

// TestKeyLog: with a KeyLog in its Limits, each side of a session writes
// both directions' keys of the first key set and of each rekey, under
// both constructions; a packet sealed at any point of the session opens
// with the line its header names (protocol id, peer ids, K bit), using
// an independent AEAD; and no line is written without a KeyLog.
func TestKeyLog(t *testing.T) {
	for _, suite := range []wire.Suite{wire.SuiteChaChaPoly, wire.SuiteAESGCM} {
		t.Run(suite.String(), func(t *testing.T) {
			var logI, logR bytes.Buffer
			p := newPair(t, ResponderConfig{})
			now := at(0)
			in, err := NewInitiator(p.ini, p.resp.PublicKey(), 0x1b2c3d4e, 0, DefaultParams(), HandshakeConfig{Suite: suite}, now, p.rand)
			if err != nil {
				t.Fatal(err)
			}
			reply, err := p.r.HandleInitiation(nil, firstInit(t, in, now), srcAddr, now, LoadState{}, 0x0badcafe)
			if err != nil || reply.Kind != ReplyResponse {
				t.Fatalf("HandleInitiation: %v", err)
			}
			ei, err := in.HandleResponse(reply.Packet, now)
			if err != nil {
				t.Fatal(err)
			}
			ti, err := NewTransport(ei, Limits{KeyLog: NewKeyLog(&logI)}, now)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := NewTransport(reply.Session, Limits{KeyLog: NewKeyLog(&logR)}, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(logI.String(), "\n"); got != 2 {
				t.Fatalf("initiator logged %d lines for its first key set, want 2", got)
			}
			// Packets of every phase, both ways: first keys, then after one
			// rekey from each side (K flips each time).
			var sealed [][]byte
			send := func(from, to *Transport, data string) {
				pkt, _ := seal(t, from, data, now)
				sealed = append(sealed, pkt)
				mustOpen(t, to, pkt, now)
			}
			send(ti, tr, "one")
			send(tr, ti, "two")
			rekeyIn(t, suite, p.ini, p.r, ti, tr, now)
			send(ti, tr, "three")
			send(tr, ti, "four")
			rekeyIn(t, suite, p.resp, mustResponder(t, p.ini), tr, ti, now)
			send(tr, ti, "five")
			send(ti, tr, "six")
			phases := map[bool]int{}
			for _, pkt := range sealed {
				phases[kBit(pkt)]++
			}
			if phases[true] == 0 || phases[false] == 0 {
				t.Fatalf("packets by K bit: %v, want both phases", phases)
			}
			// Each side: 3 key sets × 2 directions.
			li, lr := parseKeyLog(t, logI.String()), parseKeyLog(t, logR.String())
			if len(li) != 6 || len(lr) != 6 {
				t.Fatalf("lines: initiator %d, responder %d, want 6 each", len(li), len(lr))
			}
			id := suite.ProtocolID()
			for _, l := range append(li, lr...) {
				if l.align != 8 || l.proto != hex.EncodeToString(id[:]) {
					t.Fatalf("line %+v: want alignment 8 and protocol id of %v", l, suite)
				}
			}
			for i, pkt := range sealed {
				for side, lines := range map[string][]keyLogLine{"initiator": li, "responder": lr} {
					plain, ok := openWithLog(lines, pkt)
					if !ok {
						t.Fatalf("packet %d (K %v) does not open with the %s's key log", i, kBit(pkt), side)
					}
					var s wire.Stream
					if s.Parse(plain) != nil || len(s.Data) == 0 {
						t.Fatalf("packet %d: plaintext %x", i, plain)
					}
				}
			}
			// A tampered key opens nothing: the check above can fail.
			bad := append([]keyLogLine(nil), li...)
			for i := range bad {
				bad[i].key = bytes.Clone(bad[i].key)
				bad[i].key[0] ^= 1
			}
			if _, ok := openWithLog(bad, sealed[0]); ok {
				t.Fatal("a packet opened with a changed key")
			}
		})
	}
}

// mustResponder returns a Responder for identity id, for a rekey in the
// other direction.
func mustResponder(t *testing.T, id *Identity) *Responder {
	t.Helper()
	r, err := NewResponder(id, ResponderConfig{}, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestKeyLogOff: NewKeyLog(nil) is nil, and a Transport without a KeyLog
// holds none.
func TestKeyLogOff(t *testing.T) {
	if NewKeyLog(nil) != nil {
		t.Fatal("NewKeyLog(nil) is not nil")
	}
	p := newPair(t, ResponderConfig{})
	ti, tr := p.transports(t, Limits{}, at(0))
	if ti.limits.KeyLog != nil || tr.limits.KeyLog != nil {
		t.Fatal("a key log without one being asked for")
	}
}
