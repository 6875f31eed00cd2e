package main

import (
	"strings"
	"testing"
)

// TestIperfLines: run.sh's round lines become benchmark lines of the
// mtu1500 condition that parse reads back, and the ratio is Haven's
// median over ssh -L's.
func TestIperfLines(t *testing.T) {
	stderr := `== building haven
round 1: direct 21.3 Gbit/s
round 1: ssh 4.83 Gbit/s
round 1: haven 5.01 Gbit/s
round 2: direct 20.8 Gbit/s
round 2: ssh 5.01 Gbit/s
round 2: haven 4.90 Gbit/s
round 3: direct 21.3 Gbit/s
round 3: ssh 5.02 Gbit/s
round 3: haven 5.03 Gbit/s
round 3: other 9.99 Gbit/s
`
	lines := string(iperfLines(strings.NewReader(stderr)))
	if n := strings.Count(lines, "\n"); n != 9 {
		t.Fatalf("%d benchmark lines, want 9:\n%s", n, lines)
	}
	res := parse(strings.NewReader("condition: mtu1500\n" + lines)).in("mtu1500")
	haven, ssh, direct, ratio, ok := iperfRatio(res)
	if !ok || haven != 5.01 || ssh != 5.01 || direct != 21.3 || ratio != 1 {
		t.Fatalf("iperfRatio = %v, %v, %v, %v, %v; want 5.01, 5.01, 21.3, 1, true", haven, ssh, direct, ratio, ok)
	}
	var b strings.Builder
	iperfLine(&b, res)
	if !strings.Contains(b.String(), "**1.00× ssh -L**") || !strings.Contains(b.String(), "medians of 3 runs") {
		t.Fatalf("iperfLine wrote:\n%s", b.String())
	}
	if svg := chart(res, "MTU 1,500"); !strings.Contains(svg, "iperf3 through haven forward, against ssh -L") {
		t.Fatal("the chart has no iperf3 bar")
	}
}
