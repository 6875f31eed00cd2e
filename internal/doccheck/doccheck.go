// Package doccheck reads the annotated hex dumps of docs/PROTOCOL.md, so
// tests in several packages can check the document's worked examples
// against the code byte for byte. It is used only by tests.
//
// A dump is a fenced block opened by "```text example=NAME"; each line is
// "OFFSET: hh hh … | note", with a decimal offset that must equal the
// number of bytes read so far in the block.
package doccheck

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Dumps returns every example in the file at path, by name.
func Dumps(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]byte{}
	var name string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, "```text example="):
			name = strings.TrimPrefix(text, "```text example=")
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("%s:%d: example %q appears twice", path, line, name)
			}
			out[name] = []byte{}
		case name != "" && strings.HasPrefix(text, "```"):
			name = ""
		case name != "":
			var off int
			if _, err := fmt.Sscanf(text, "%04d:", &off); err != nil || len(text) < 5 {
				return nil, fmt.Errorf("%s:%d: bad dump line %q", path, line, text)
			}
			if off != len(out[name]) {
				return nil, fmt.Errorf("%s:%d: offset %d, but %d bytes so far", path, line, off, len(out[name]))
			}
			hx, _, _ := strings.Cut(text[5:], "|")
			b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(hx), " ", ""))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, line, err)
			}
			out[name] = append(out[name], b...)
		}
	}
	if name != "" {
		return nil, fmt.Errorf("%s: example %q is not closed", path, name)
	}
	return out, sc.Err()
}
