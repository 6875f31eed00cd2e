package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// The iperf3 figure (issue #12): a real TCP client and server through
// `haven forward` and `haven serve -forward`, against OpenSSH's `ssh -L`
// and direct TCP, measured by iperf/run.sh at MTU 1,500. The report runs
// the script after the benchmarks and keeps its measurements as benchmark
// lines of the mtu1500 condition, "BenchmarkIperf/<path> 1 <v> Gbit/s",
// so that results.txt holds them and -input reads them back.

// iperfSystems maps run.sh's path names to the report's system names.
var iperfSystems = map[string]string{"haven": "Haven", "ssh": "SSH", "direct": "Direct"}

// iperfRound matches run.sh's "round 2: ssh 4.88 Gbit/s".
var iperfRound = regexp.MustCompile(`^round \d+: (\w+) ([0-9.]+) Gbit/s$`)

// runIperf runs iperf/run.sh with rounds rounds of 5 s, echoing its
// output to stderr, and returns its measurements as benchmark lines.
func runIperf(rounds int) ([]byte, error) {
	fmt.Fprintf(os.Stderr, "== iperf3 through haven forward, ssh -L and direct TCP (iperf/run.sh, %d rounds)\n", rounds)
	cmd := exec.Command("bash", "iperf/run.sh")
	cmd.Env = append(os.Environ(), "ROUNDS="+strconv.Itoa(rounds), "SECONDS_EACH=5")
	var errOut bytes.Buffer
	cmd.Stdout = os.Stderr
	cmd.Stderr = io.MultiWriter(&errOut, os.Stderr)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("iperf/run.sh: %w", err)
	}
	out := iperfLines(&errOut)
	if len(out) == 0 {
		return nil, fmt.Errorf("iperf/run.sh printed no measurement")
	}
	return out, nil
}

// iperfLines turns run.sh's round lines into benchmark lines.
func iperfLines(r io.Reader) []byte {
	var b bytes.Buffer
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := iperfRound.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil || iperfSystems[m[1]] == "" {
			continue
		}
		fmt.Fprintf(&b, "BenchmarkIperf/%s 1 %s Gbit/s\n", iperfSystems[m[1]], m[2])
	}
	return b.Bytes()
}

// iperfRatio is Haven's throughput through the forward pair over ssh -L's.
func iperfRatio(res results) (haven, ssh, direct, ratio float64, ok bool) {
	haven, ok1 := res.median("Iperf", "Haven", "Gbit/s")
	ssh, ok2 := res.median("Iperf", "SSH", "Gbit/s")
	direct, _ = res.median("Iperf", "Direct", "Gbit/s")
	if !ok1 || !ok2 || ssh == 0 {
		return 0, 0, 0, 0, false
	}
	return haven, ssh, direct, haven / ssh, true
}

// iperfLine reports the iperf3 figure of a condition.
func iperfLine(b *strings.Builder, res results) {
	haven, ssh, direct, ratio, ok := iperfRatio(res)
	if !ok {
		return
	}
	fmt.Fprintf(b, "\niperf3 (a real TCP client and server) through `haven forward -L` and `haven serve -forward`,\n"+
		"against OpenSSH's `ssh -L` (sshd on loopback, default ciphers) and direct TCP, `iperf/run.sh`,\n"+
		"medians of %d runs of 5 s: Haven %s Gbit/s, ssh -L %s, direct TCP %s: **%s× ssh -L**\n"+
		"(issue #12 asks for 2× or more).\n",
		len(res.values[key{"", "Iperf", "Haven", "Gbit/s"}]), format(haven), format(ssh), format(direct), format(ratio))
}
