package secure

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/havenproto/haven/internal/doccheck"
)

// TestProtocolDocSealedExample checks docs/PROTOCOL.md §9.2 and §9.6: the
// plaintext example is what openStreamExample builds, and the sealed dump
// is what Seal produces for it (TestSealedExample proves that part).
func TestProtocolDocSealedExample(t *testing.T) {
	dumps, err := doccheck.Dumps("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dumps["open-stream"], openStreamExample()) {
		t.Fatalf("§9.2 differs from the example sealed here:\ndoc %x\nour %x", dumps["open-stream"], openStreamExample())
	}
	want, _ := hex.DecodeString(sealedOpenStream)
	if !bytes.Equal(dumps["open-stream-sealed"], want) {
		t.Fatalf("§9.6 differs from Seal's output:\ndoc %x\nour %x", dumps["open-stream-sealed"], want)
	}
}
