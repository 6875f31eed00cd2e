package secure

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/havenproto/haven/wire"
)

// Fuzz modes: the first input byte selects options, the rest is the packet.
const (
	fuzzRemacInit = 1 << iota // recompute an initiation's mac1 (reach the Noise read)
	fuzzOverload              // signal load to the responder
	fuzzRemacResp             // recompute a response's mac1
)

var fuzzIDs struct {
	once      sync.Once
	ini, resp *Identity
}

// fuzzSetup builds a deterministic responder and an initiator that has
// sent its first initiation: the same bytes on every call, so recorded
// responses and cookie replies in the corpus stay valid.
func fuzzSetup(tb testing.TB) (*Responder, *Initiator, []byte) {
	fuzzIDs.once.Do(func() {
		fuzzIDs.ini, fuzzIDs.resp = identityOf(tb, 0x49), identityOf(tb, 0x52)
	})
	fuzzIDs.ini.lastStamp.Store(0)
	r, err := NewResponder(fuzzIDs.resp, ResponderConfig{RateTableSize: 16, MaxPeers: 16}, seeded(2))
	if err != nil {
		tb.Fatal(err)
	}
	in, err := NewInitiator(fuzzIDs.ini, fuzzIDs.resp.PublicKey(), 0x1b2c3d4e, 0, DefaultParams(), HandshakeConfig{}, t0, seeded(1))
	if err != nil {
		tb.Fatal(err)
	}
	init, _, err := in.Poll(t0)
	if err != nil {
		tb.Fatal(err)
	}
	return r, in, init
}

// FuzzHandshake feeds arbitrary bytes to every handshake parser (the
// responder's HandleInitiation, the initiator's HandleResponse and
// HandleCookieReply) and to Transport.Open, and checks that nothing panics
// and that replies never amplify.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0x8e, 0x88})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, in, _ := fuzzSetup(t)
		var mode byte
		if len(data) > 0 {
			mode, data = data[0], data[1:]
		}
		pkt := bytes.Clone(data)
		if mode&fuzzRemacInit != 0 && len(pkt) == wire.InitPacketLen {
			remac(pkt, fuzzIDs.resp.PublicKey(), wire.InitMAC1Offset)
		}
		reply, err := r.HandleInitiation(nil, pkt, srcAddr, t0, LoadState{Overloaded: mode&fuzzOverload != 0}, 0)
		if (err == nil) != (reply.Packet != nil) {
			t.Fatalf("error %v with a %d-byte reply", err, len(reply.Packet))
		}
		switch reply.Kind {
		case 0:
		case ReplyResponse:
			if len(reply.Packet) != wire.ResponsePacketLen || reply.Session == nil {
				t.Fatalf("response of %d bytes", len(reply.Packet))
			}
		case ReplyCookie:
			if len(reply.Packet) != wire.CookiePacketLen || reply.Session != nil {
				t.Fatalf("cookie reply of %d bytes", len(reply.Packet))
			}
		default:
			t.Fatalf("reply kind %d", reply.Kind)
		}
		if len(reply.Packet) >= len(pkt) && reply.Packet != nil {
			t.Fatalf("%d-byte reply to %d bytes", len(reply.Packet), len(pkt))
		}

		_ = in.HandleCookieReply(bytes.Clone(data), t0)
		pkt = bytes.Clone(data)
		if mode&fuzzRemacResp != 0 && len(pkt) == wire.ResponsePacketLen {
			remac(pkt, fuzzIDs.ini.PublicKey(), wire.RespMAC1Offset)
		}
		if e, err := in.HandleResponse(pkt, t0); err == nil {
			if e == nil || e.Peer != fuzzIDs.resp.PublicKey() {
				t.Fatalf("accepted response without a session: %+v", e)
			}
		}

		tr := transportWithKey(t, bytes.Repeat([]byte{0x4b}, 32), 0)
		plain, _, err := tr.Open(bytes.Clone(data), t0)
		if err == nil && len(plain) != len(data)-wire.TagLen {
			t.Fatalf("opened %d bytes into %d", len(data), len(plain))
		}
		// The length field is outside the associated data: another value
		// opens, or fails, alike.
		if len(data) >= wire.HeaderLen {
			alt := bytes.Clone(data)
			alt[wire.OffLength] ^= 0x5a
			alt[wire.OffLength+1] ^= 0xa5
			tr2 := transportWithKey(t, bytes.Repeat([]byte{0x4b}, 32), 0)
			plain2, _, err2 := tr2.Open(alt, t0)
			if (err == nil) != (err2 == nil) ||
				(err == nil && !bytes.Equal(plain[wire.HeaderLen:], plain2[wire.HeaderLen:])) {
				t.Fatalf("length field changed the outcome of Open: %v / %v", err, err2)
			}
		}
	})
}

// TestWriteFuzzSeeds writes the valid packets of the seed corpus when
// HAVEN_WRITE_FUZZ_SEEDS is set; otherwise it checks the corpus still
// holds valid packets.
func TestWriteFuzzSeeds(t *testing.T) {
	r, in, init := fuzzSetup(t)
	resp, err := r.HandleInitiation(nil, init, srcAddr, t0, LoadState{}, 0x0badcafe)
	if err != nil {
		t.Fatal(err)
	}
	r2, _, _ := fuzzSetup(t)
	cookie, err := r2.HandleInitiation(nil, init, srcAddr, t0, LoadState{Overloaded: true}, 0)
	if err != nil || cookie.Kind != ReplyCookie {
		t.Fatal(err)
	}
	sealed, _ := hex.DecodeString(sealedOpenStream)
	// The "-stream" seeds are the same packets in their stream-transport
	// form (PROTOCOL.md §8), with the payload length field set: still
	// valid, since no cryptography covers the field.
	seeds := map[string][]byte{
		"initiation":          append([]byte{0}, init...),
		"initiation-overload": append([]byte{fuzzOverload}, init...),
		"initiation-remac":    append([]byte{fuzzRemacInit}, init...),
		"response":            append([]byte{0}, resp.Packet...),
		"response-remac":      append([]byte{fuzzRemacResp}, resp.Packet...),
		"cookie-reply":        append([]byte{0}, cookie.Packet...),
		"transport":           append([]byte{0}, sealed...),
		"initiation-stream":   append([]byte{0}, withLength(init)...),
		"response-stream":     append([]byte{0}, withLength(resp.Packet)...),
		"cookie-reply-stream": append([]byte{0}, withLength(cookie.Packet)...),
		"transport-stream":    append([]byte{0}, withLength(sealed)...),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHandshake")
	if os.Getenv("HAVEN_WRITE_FUZZ_SEEDS") != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range seeds {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("seed %s: %v (run with HAVEN_WRITE_FUZZ_SEEDS=1)", name, err)
		}
		if want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b); string(got) != want {
			t.Errorf("seed %s is stale: rerun with HAVEN_WRITE_FUZZ_SEEDS=1", name)
		}
	}
	// The recorded response and cookie reply are accepted by the
	// deterministic initiator, in both forms.
	if err := in.HandleCookieReply(withLength(cookie.Packet), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := in.HandleResponse(resp.Packet, t0); err != nil {
		t.Fatal(err)
	}
	r3, in3, _ := fuzzSetup(t)
	resp3, err := r3.HandleInitiation(nil, withLength(init), srcAddr, t0, LoadState{}, 0x0badcafe)
	if err != nil || !bytes.Equal(resp3.Packet, resp.Packet) {
		t.Fatalf("stream-form initiation: %v, response %x, want %x", err, resp3.Packet, resp.Packet)
	}
	if _, err := in3.HandleResponse(withLength(resp.Packet), t0); err != nil {
		t.Fatal(err)
	}
	rx := transportWithKey(t, bytes.Repeat([]byte{0x4b}, 32), 0)
	if _, _, err := rx.Open(withLength(sealed), t0); err != nil {
		t.Fatal(err)
	}
}
