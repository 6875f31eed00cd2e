package doccheck

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDumps(t *testing.T) {
	p := write(t, "# x\n```text example=a\n0000: 01 02 | one\n0002: ff    | two\n```\ntext\n```text example=b\n0000: aa |\n```\n")
	got, err := Dumps(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got["a"], []byte{1, 2, 0xff}) || !bytes.Equal(got["b"], []byte{0xaa}) || len(got) != 2 {
		t.Fatalf("got %v", got)
	}
}

func TestDumpsErrors(t *testing.T) {
	for _, doc := range []string{
		"```text example=a\n0001: 01 | wrong offset\n```\n",
		"```text example=a\n0000: 0g | bad hex\n```\n",
		"```text example=a\nnot a dump line\n```\n",
		"```text example=a\n0000: 01 |\n",
		"```text example=a\n```\n```text example=a\n```\n",
	} {
		if _, err := Dumps(write(t, doc)); err == nil {
			t.Errorf("accepted %q", strings.Split(doc, "\n")[1])
		}
	}
}
