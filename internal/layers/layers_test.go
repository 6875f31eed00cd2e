// Package layers holds the test that enforces Haven's package layering
// (docs/ARCHITECTURE.md, "Layers"): a package imports only packages of
// lower layers, and only the third-party modules its layer may use.
package layers

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/havenproto/haven"

// rank orders the module's packages bottom-up: a package may import module
// packages of strictly lower rank only. A package missing here fails the
// test, so a new package has to be placed deliberately.
var rank = map[string]int{
	"alignment":         0,
	"internal/doccheck": 0,
	"internal/idtable":  0,
	"wire":              1,
	"internal/aesgcm":   1,
	"internal/noise":    2,
	"mux/congestion":    2,
	"mux/internal/buf":  2,
	"mux/internal/fec":  0,
	"internal/netsim":   2,
	"internal/secure":   3,
	"mux":               3,
	"internal/udp":      3,
	"internal/udpproxy": 2,
	"internal/endpoint": 4,
	"dialer":            5,
	"listener":          5,
	"compat":            4, // a transport for internal/endpoint, beside it; dialer and net use it
	"net":               7,
	"cmd/haven":         8,
	"contrib/wireshark": 8, // the Wireshark dissector's tests: a session through net, decoded by tshark
	"internal/layers":   9,
}

// stdlibOnly lists the layers that must not reach outside the standard
// library, even indirectly.
var stdlibOnly = map[string]bool{
	"alignment": true, "wire": true, "internal/doccheck": true, "internal/idtable": true,
	"mux/congestion": true, "mux/internal/buf": true, "mux/internal/fec": true, "internal/netsim": true, "internal/udpproxy": true,
}

// allowedModules are the third-party modules any package may use
// (DEVELOPERS.md, "Dependencies"); quic-go lives only in benchmarks/.
// filippo.io/edwards25519 gives internal/noise the field arithmetic of an
// allocation-free X25519 (crypto/ecdh allocates per operation; see
// docs/ARCHITECTURE.md).
var allowedModules = []string{
	"filippo.io/edwards25519",
	"golang.org/x/crypto",
	"golang.org/x/net",
	"golang.org/x/sys",
	"github.com/coreos/go-systemd/v22",
}

type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	cmd := exec.Command("go", "list", "-deps=false", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// standard reports whether an import path is in the standard library: its
// first element has no dot (module paths always do).
func standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func allowedExternal(path string) bool {
	for _, m := range allowedModules {
		if path == m || strings.HasPrefix(path, m+"/") {
			return true
		}
	}
	return false
}

func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 3 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		r, ok := rank[rel]
		if !ok {
			t.Errorf("package %s has no layer: add it to rank and to docs/ARCHITECTURE.md", rel)
			continue
		}
		for _, imp := range p.Imports {
			switch {
			case standard(imp):
			case strings.HasPrefix(imp, module+"/"):
				dep := strings.TrimPrefix(imp, module+"/")
				if dr, ok := rank[dep]; !ok || dr >= r {
					t.Errorf("%s (layer %d) imports %s (layer %d): imports must go downward", rel, r, dep, dr)
				}
			case !allowedExternal(imp):
				t.Errorf("%s imports %s, which is not an allowed dependency", rel, imp)
			}
		}
		if stdlibOnly[rel] {
			for _, d := range p.Deps {
				if !standard(d) && !strings.HasPrefix(d, module+"/") {
					t.Errorf("%s must use only the standard library, but depends on %s", rel, d)
				}
			}
		}
	}
}

// TestStandardHeuristic guards the helper the layering rules rest on.
func TestStandardHeuristic(t *testing.T) {
	for path, want := range map[string]bool{
		"fmt": true, "crypto/sha256": true, "golang.org/x/crypto/blake2s": false,
		module + "/wire": false, "github.com/quic-go/quic-go": false,
	} {
		if standard(path) != want {
			t.Errorf("standard(%q) = %v", path, !want)
		}
	}
}
