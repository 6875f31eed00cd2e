package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/havenproto/haven/internal/doccheck"
)

// aesOpenStream is the plaintext of docs/PROTOCOL.md §9.7: the packet of
// §9.2 under the AES-256-GCM construction, whose protocol id and peer-id
// tags differ (§2.1, §3.2); the messages are the same.
func aesOpenStream(t *testing.T) []byte {
	ini := PrivateKey(bytes.Repeat([]byte{0x49}, 32)).PublicKey()
	rsp := PrivateKey(bytes.Repeat([]byte{0x52}, 32)).PublicKey()
	h := Header{Suite: SuiteAESGCM, Channel: 1, Destination: MakePeerID(SuiteAESGCM.AuthTag(rsp), 0x0badcafe),
		Source: MakePeerID(SuiteAESGCM.AuthTag(ini), 0x1b2c3d4e), PacketNumber: 1}
	b := h.Append(make([]byte, 0, 128))
	if !bytes.Equal(b[OffProtocolID:OffProtocolID+8], ProtocolIDAESGCM[:]) {
		t.Fatalf("a SuiteAESGCM header starts with % x", b[:8])
	}
	b = AppendAlign(b, 8)
	o := Open{Type: ChannelStream, Priority: 3, Window: 262144, Service: []byte("echo")}
	b = o.Append(b)
	b = AppendAlign(b, 8)
	s := Stream{Data: []byte("hello")}
	return s.Append(b)
}

// TestProtocolDocAESGCM checks the known answers of the second
// construction in docs/PROTOCOL.md: its protocol id (§2.1) and the sealed
// packet of §9.7, AES-256-GCM under the key 32 × 0x4b with Noise's AESGCM
// nonce (32 zero bits, then the packet number big-endian) and the header
// as associated data.
func TestProtocolDocAESGCM(t *testing.T) {
	want := [8]byte{0x86, 0xb5, 0xef, 0x6f, 0xb9, 0x1e, 0x34, 0x5b}
	if ProtocolIDAESGCM != want {
		t.Errorf("ProtocolIDAESGCM % x, want the id of §2.1, % x", ProtocolIDAESGCM, want)
	}
	if ProtocolIDAESGCM == ProtocolID || AuthTagIn(ProtocolIDAESGCM, PublicKey{9}) == AuthTagOf(PublicKey{9}) {
		t.Fatal("the AES-GCM construction shares an id or a tag with the ChaCha20-Poly1305 one")
	}
	plain := aesOpenStream(t)
	block, err := aes.NewCipher(bytes.Repeat([]byte{0x4b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce[4:], 1)
	sealed := aead.Seal(bytes.Clone(plain[:HeaderLen]), nonce, plain[HeaderLen:], plain[:HeaderLen])
	if os.Getenv("HAVEN_PRINT_EXAMPLES") != "" {
		var sb strings.Builder
		for off := 0; off < len(sealed); off += 8 {
			fmt.Fprintf(&sb, "%04d: % x\n", off, sealed[off:min(off+8, len(sealed))])
		}
		t.Logf("sealed (%d bytes):\n%s", len(sealed), sb.String())
	}
	dumps, err := doccheck.Dumps("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	if got := dumps["open-stream-sealed-aesgcm"]; !bytes.Equal(got, sealed) {
		t.Fatalf("§9.7 differs from AES-256-GCM's output:\ndoc %x\nour %x", got, sealed)
	}
	opened, err := aead.Open(nil, nonce, sealed[HeaderLen:], sealed[:HeaderLen])
	if err != nil || !bytes.Equal(opened, plain[HeaderLen:]) {
		t.Fatalf("the §9.7 packet does not open: %v", err)
	}
}
