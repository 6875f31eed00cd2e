package secure

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/havenproto/haven/wire"
	"golang.org/x/crypto/chacha20poly1305"
)

// sealedOpenStream is docs/PROTOCOL.md §9.2 (example open-stream) sealed
// with the transport key 32 × 0x4b at packet number 1: the 40-byte header
// in clear, 29 bytes of ciphertext and the 16-byte tag.
const sealedOpenStream = "" +
	"8e884acdef4618f20000000001000000f244e066fecaad0b5fc207ad4e3d2c1b0100000000000000" + // header
	"b28b0c10ae95c2eb2b0b6eae24ca4ab0f5627d8a1f015f837d7032ed48" + // messages, encrypted
	"37f428f738825810e0d79a7d03426efe" // tag

// transportWithKey returns a Transport whose current keys are key in both
// directions, with the send counter at pn.
func transportWithKey(tb testing.TB, key []byte, pn uint64) *Transport {
	tb.Helper()
	t := &Transport{limits: Limits{}.withDefaults(), cur: 0, prev: none, next: none, phaseStarted: true}
	t.sets[0] = keySet{created: t0, initiator: true, inUse: true}
	if t.sets[0].send.InitializeKey(key) != nil || t.sets[0].recv.InitializeKey(key) != nil {
		tb.Fatal("InitializeKey")
	}
	t.nextPN = pn
	return t
}

// openStreamExample rebuilds the plaintext of PROTOCOL.md example
// open-stream with wire's encoders, with room for the tag.
func openStreamExample() []byte {
	ini := identityPub(0x49)
	rsp := identityPub(0x52)
	h := wire.Header{Channel: 1, Destination: wire.MakePeerID(wire.AuthTagOf(rsp), 0x0badcafe),
		Source: wire.MakePeerID(wire.AuthTagOf(ini), 0x1b2c3d4e), PacketNumber: 1}
	b := h.Append(make([]byte, 0, 128))
	b = wire.AppendAlign(b, 8)
	o := wire.Open{Type: wire.ChannelStream, Priority: 3, Window: 262144, Service: []byte("echo")}
	b = o.Append(b)
	b = wire.AppendAlign(b, 8)
	s := wire.Stream{Data: []byte("hello")}
	return s.Append(b)
}

func identityPub(v byte) wire.PublicKey {
	return wire.PrivateKey(bytes.Repeat([]byte{v}, 32)).PublicKey()
}

func TestSealedExample(t *testing.T) {
	plain := openStreamExample()
	if len(plain) != 69 || !strings.HasPrefix(hex.EncodeToString(plain), "8e884acdef4618f2") {
		t.Fatalf("example plaintext: %x", plain)
	}
	// The example's length field is 0, so its associated data (the header
	// with the length field taken as zero) is the header itself, and the
	// sealed bytes are the same as before the field was excluded from the
	// associated data: the constant above did not change.
	var ad [wire.HeaderLen]byte
	if plain[wire.OffLength] != 0 || plain[wire.OffLength+1] != 0 ||
		!bytes.Equal(cryptoHeader(&ad, plain), plain[:wire.HeaderLen]) {
		t.Fatalf("example header %x: length field not zero", plain[:wire.HeaderLen])
	}
	key := bytes.Repeat([]byte{0x4b}, 32)
	tr := transportWithKey(t, key, 1)
	buf := append(make([]byte, 0, len(plain)+wire.TagLen), plain...)
	sealed, pn, err := tr.Seal(buf, t0)
	if err != nil || pn != 1 {
		t.Fatalf("Seal: %v pn %d", err, pn)
	}

	// Independent check: ChaCha20-Poly1305 with nonce 0^32 || u64le(1) and
	// the header as associated data.
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 12)
	nonce[4] = 1
	want := aead.Seal(bytes.Clone(plain[:wire.HeaderLen]), nonce, plain[wire.HeaderLen:], plain[:wire.HeaderLen])
	if !bytes.Equal(sealed, want) {
		t.Fatalf("sealed\n%x\nwant\n%x", sealed, want)
	}
	got := hex.EncodeToString(sealed)
	if os.Getenv("HAVEN_PRINT_EXAMPLES") != "" {
		t.Logf("sealed open-stream (%d bytes):\n%s", len(sealed), got)
	}
	if got != sealedOpenStream {
		t.Fatalf("sealed open-stream:\n%s\nwant\n%s", got, sealedOpenStream)
	}

	// And it opens.
	rx := transportWithKey(t, key, 0)
	out, pn, err := rx.Open(sealed, t0)
	if err != nil || pn != 1 || !bytes.Equal(out, plain) {
		t.Fatalf("Open: %v pn %d\n%x", err, pn, out)
	}
}
