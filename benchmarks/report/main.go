// Command report runs the side-by-side benchmarks of this module several
// times, takes the median of each figure, and writes results.md (a
// Markdown table with Haven/quic-go ratios), results.svg (a bar chart of
// Haven's advantage per figure) and results.txt (the raw go test output,
// for benchstat). With the MTU-1,500 condition it also runs iperf/run.sh
// (iperf3 through `haven forward`, `ssh -L` and direct TCP) after the
// benchmarks. Run it from the benchmarks directory:
//
//	go run ./report                      # 5 runs of every benchmark, 1 s each
//	go run ./report -count 3 -benchtime 2s
//	go run ./report -input results.txt   # redo the table from saved output
//
// The test binary is built once and run -count times, each run going
// through every benchmark once, Haven, QUIC and TLS one after the other: so
// the systems alternate, and a slow spell on a shared machine hurts one
// run of each rather than every run of one. Ratios compare medians taken
// from the same runs.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	count := flag.Int("count", 5, "how many times to run the whole suite")
	benchtime := flag.String("benchtime", "1s", "go test -benchtime for each benchmark")
	bench := flag.String("bench", ".", "go test -bench pattern")
	input := flag.String("input", "", "parse this saved go test output instead of running the benchmarks")
	outDir := flag.String("out", ".", "directory for results.md, results.svg and results.txt")
	conds := flag.String("conditions", "mtu1500,loopback", "comma-separated conditions to run each pass under: mtu1500 (a network namespace whose loopback MTU is 1,500; needs root and ip) and loopback (the host's loopback, 65,536 MTU)")
	iperf := flag.Bool("iperf", true, "with the mtu1500 condition, also run iperf3 through haven forward, ssh -L and direct TCP (iperf/run.sh, -count rounds; root; it installs iperf3 and openssh-server if missing)")
	flag.Parse()

	var raw []byte
	if *input != "" {
		b, err := os.ReadFile(*input)
		if err != nil {
			fatal(err)
		}
		raw = b
	} else {
		b, err := runSuite(*count, *bench, *benchtime, strings.Split(*conds, ","))
		if err != nil {
			fatal(err)
		}
		if *iperf && slices.Contains(strings.Split(*conds, ","), "mtu1500") {
			out, err := runIperf(*count)
			if err != nil {
				fmt.Fprintf(os.Stderr, "report: %v; the iperf3 figure is missing\n", err)
				b = fmt.Appendf(b, "failed: iperf3: %v\n", err)
			} else {
				b = append(append(b, "condition: mtu1500\n"...), out...)
			}
		}
		raw = b
		if err := os.WriteFile(filepath.Join(*outDir, "results.txt"), raw, 0o644); err != nil {
			fatal(err)
		}
	}
	res := parse(bytes.NewReader(raw))
	if len(res.values) == 0 {
		fatal(fmt.Errorf("no benchmark results found"))
	}
	meta := describeMachine(raw)
	meta.runs = res.runs
	md := markdown(res, meta)
	if err := os.WriteFile(filepath.Join(*outDir, "results.md"), []byte(md), 0o644); err != nil {
		fatal(err)
	}
	head := res.conds[0]
	if err := os.WriteFile(filepath.Join(*outDir, "results.svg"), []byte(chart(res.in(head), conditions[head].short)), 0o644); err != nil {
		fatal(err)
	}
	fmt.Print(md)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

// runSuite builds the test binary of the package in the current directory
// and runs every benchmark count times under each condition, the
// conditions alternating within each run, echoing the output to stderr.
// Each condition's output starts with a line "condition: NAME", which
// parse reads.
func runSuite(count int, bench, benchtime string, conds []string) ([]byte, error) {
	if _, err := os.Stat("go.mod"); err != nil {
		return nil, fmt.Errorf("run from the benchmarks directory (go run ./report): %w", err)
	}
	for _, c := range conds {
		if _, ok := conditions[c]; !ok {
			return nil, fmt.Errorf("unknown condition %q (want mtu1500 or loopback)", c)
		}
	}
	dir, err := os.MkdirTemp("", "haven-report")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bench.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building the benchmarks: %w", err)
	}
	if slices.Contains(conds, "mtu1500") {
		ns, err := setUpNamespace()
		if err != nil {
			return nil, err
		}
		defer tearDownNamespace(ns)
	}
	var all bytes.Buffer
	for i := 1; i <= count; i++ {
		for _, c := range conds {
			fmt.Fprintf(os.Stderr, "== run %d of %d, %s\n", i, count, conditions[c].title)
			fmt.Fprintf(&all, "condition: %s\n", c)
			args := []string{bin, "-test.run", "NONE", "-test.bench", bench, "-test.benchmem",
				"-test.benchtime", benchtime, "-test.count", "1", "-test.timeout", "60m"}
			if c == "mtu1500" {
				args = append([]string{"ip", "netns", "exec", namespace}, args...)
			}
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Stdout = io.MultiWriter(&all, os.Stderr)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				// A benchmark that fails (b.Fatal) leaves no line, and the
				// others of the run still count: keep going, and say so
				// in the report instead of losing every run.
				fmt.Fprintf(os.Stderr, "report: run %d (%s): %v; its other benchmarks are kept\n", i, c, err)
				fmt.Fprintf(&all, "failed: run %d (%s): %v\n", i, c, err)
			}
		}
	}
	return all.Bytes(), nil
}

// condition is where a pass of the benchmarks runs.
type condition struct {
	title string // as the report shows it
	short string // in the chart
	order int    // the report's section order: the headline first
}

var conditions = map[string]condition{
	"mtu1500":  {"MTU 1,500 (loopback in a network namespace whose MTU is 1,500, as on Ethernet)", "MTU 1,500", 0},
	"loopback": {"plain loopback (65,536 MTU; figures that hold only here are loopback-only)", "plain loopback (64 KiB MTU)", 1},
}

// namespace is the network namespace of the mtu1500 condition.
const namespace = "haven-report"

// setUpNamespace makes the mtu1500 condition's namespace: its own loopback
// at MTU 1,500 and nothing else (no route out). It needs root and ip
// (iproute2). It says what it did on stderr.
func setUpNamespace() (string, error) {
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	exec.Command("ip", "netns", "del", namespace).Run() // left over from an interrupted report
	if err := run("netns", "add", namespace); err != nil {
		return "", fmt.Errorf("the mtu1500 condition needs a network namespace (root and iproute2; or run -conditions loopback): %w", err)
	}
	if err := run("netns", "exec", namespace, "ip", "link", "set", "lo", "mtu", "1500", "up"); err != nil {
		tearDownNamespace(namespace)
		return "", err
	}
	out, err := exec.Command("ip", "netns", "exec", namespace, "cat", "/sys/class/net/lo/mtu").Output()
	if err != nil || strings.TrimSpace(string(out)) != "1500" {
		tearDownNamespace(namespace)
		return "", fmt.Errorf("namespace %s: loopback MTU is %q, want 1500 (%v)", namespace, bytes.TrimSpace(out), err)
	}
	fmt.Fprintf(os.Stderr, "== network namespace %s set up: loopback MTU 1500 (removed at the end)\n", namespace)
	return namespace, nil
}

func tearDownNamespace(ns string) {
	if err := exec.Command("ip", "netns", "del", ns).Run(); err != nil {
		fmt.Fprintf(os.Stderr, "report: removing network namespace %s: %v\n", ns, err)
		return
	}
	fmt.Fprintf(os.Stderr, "== network namespace %s removed\n", ns)
}

// results holds every value, by condition, workload, system and unit.
type results struct {
	values map[key][]float64
	runs   int      // the most values of any one key: how many runs were parsed
	conds  []string // the conditions seen, headline first
	failed []string // runs that failed, and the benchmarks that did
}

type key struct{ cond, workload, system, unit string }

// parse reads go test benchmark lines: "BenchmarkBulk/Haven-2  N  v unit  v unit ...".
func parse(r io.Reader) results {
	res := results{values: map[key][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	cond := "loopback" // output saved before conditions existed
	for sc.Scan() {
		if c, ok := strings.CutPrefix(sc.Text(), "condition: "); ok {
			cond = strings.TrimSpace(c)
			continue
		}
		if f, ok := strings.CutPrefix(sc.Text(), "failed: "); ok {
			res.failed = append(res.failed, f)
			continue
		}
		if f, ok := strings.CutPrefix(sc.Text(), "--- FAIL: "); ok {
			res.failed = append(res.failed, cond+": "+strings.TrimSpace(f))
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the GOMAXPROCS suffix
			}
		}
		workload, system, ok := strings.Cut(name, "/")
		if !ok {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			k := key{cond, workload, system, f[i+1]}
			if !slices.Contains(res.conds, cond) {
				res.conds = append(res.conds, cond)
			}
			res.values[k] = append(res.values[k], v)
			res.runs = max(res.runs, len(res.values[k]))
		}
	}
	slices.SortStableFunc(res.conds, func(a, b string) int { return conditions[a].order - conditions[b].order })
	return res
}

// in returns the results of one condition, under the empty condition name.
func (r results) in(cond string) results {
	out := results{values: map[key][]float64{}, runs: r.runs}
	for k, v := range r.values {
		if k.cond == cond {
			k.cond = ""
			out.values[k] = v
		}
	}
	return out
}

// median of the values for k; ok is false when there are none.
func (r results) median(workload, system, unit string) (float64, bool) {
	v := slices.Clone(r.values[key{"", workload, system, unit}])
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

// row is one line of the table: a figure of a workload.
type row struct {
	workload, unit string
	label          string
	higherBetter   bool
	scale          float64 // display value = value × scale
	shown          string  // display unit
	haven          string  // the system in Haven's column ("": Haven, the default Config)
}

// havenSys is the system whose figure fills r's Haven column.
func (r row) havenSys() string {
	if r.haven != "" {
		return r.haven
	}
	return "Haven"
}

// rows are the figures reported, in order.
var rows = []row{
	{"Bulk", "MB/s", "bulk, 1 stream, 64 KiB writes", true, 1, "MB/s", ""},
	{"BulkParallel8", "MB/s", "bulk, 8 streams in parallel", true, 1, "MB/s", ""},
	{"BulkBasePackets", "MB/s", "bulk, 1 stream, Haven at 1,452-byte packets (no PMTU discovery)", true, 1, "MB/s", ""},
	{"BulkTCPFallback", "MB/s", "bulk, 1 stream, Haven over its TCP fallback (haven+tcp)", true, 1, "MB/s", ""},
	{"Bulk", "allocs/op", "bulk allocations per 64 KiB (both ends)", false, 1, "allocs", ""},
	{"Handshake", "ns/op", "fresh session + first byte echoed + close (returning client, its socket kept)", false, 1e-3, "µs", ""},
	{"Handshake", "allocs/op", "fresh session allocations (both ends)", false, 1, "allocs", ""},
	{"HandshakeNewClient", "ns/op", "the same with a new client socket each time", false, 1e-3, "µs", ""},
	{"HandshakeNewClient", "allocs/op", "allocations with a new client socket (both ends)", false, 1, "allocs", ""},
	{"HandshakeNewPeers", "ns/op", "new client socket, 1,024 Haven client keys (nothing cached)", false, 1e-3, "µs", ""},
	{"OpenEcho", "ns/op", "stream open (Session.OpenStream) + 1-byte echo + close", false, 1e-3, "µs", ""},
	{"OpenDialEcho", "ns/op", "stream open with net.Dial on a live session + 1-byte echo + close", false, 1e-3, "µs", ""},
	{"ReqResp", "p50-µs", "request/response 64 B, p50", false, 1, "µs", ""},
	{"ReqResp", "p99-µs", "request/response 64 B, p99", false, 1, "µs", ""},
	{"IdleMemory", "B/session", "idle memory per session (both ends)", false, 1.0 / 1024, "KiB", ""},
	{"IdleMemory", "goroutines/session", "goroutines per idle session (both ends)", false, 1, "", ""},
	{"IdleMemory", "srv-goroutines/session", "server goroutines per idle session", false, 1, "", ""},
	{"Datagram", "recv-MB/s", "datagrams 1,200 B, received", true, 1, "MB/s", ""},
	{"Datagram", "loss-%", "datagrams 1,200 B, loss", false, 1, "%", ""},
	{"PriorityBesideBulk", "idle-µs", "priority-0 request/response at 50 Mbit/s, idle, p50", false, 1, "µs", ""},
	{"PriorityBesideBulk", "p99-µs", "the same beside bulk on the session, p99", false, 1, "µs", ""},
	{"PriorityBesideBulk", "bulk-MB/s", "the bulk meanwhile (of 6.25 MB/s)", true, 1, "MB/s", ""},
	{workload: "PriorityBesideBulk", unit: "p99-µs", label: "the same, Haven with BBR (Config.Congestion), p99", scale: 1, shown: "µs", haven: "HavenBBR"},
	{workload: "PriorityBesideBulk", unit: "bulk-MB/s", label: "the bulk meanwhile, Haven with BBR (of 6.25 MB/s)", higherBetter: true, scale: 1, shown: "MB/s", haven: "HavenBBR"},
	{"DatagramLoss", "delivered-%", "datagrams at 5 % loss, delivered (Haven: FEC 64+8)", true, 1, "%", ""},
	{"DatagramLoss", "repair-%", "FEC repair symbols per datagram (Haven)", false, 1, "%", ""},
	{"HeadOfLine", "p50-µs", "small stream beside bulk, 2 % loss, p50", false, 1, "µs", ""},
	{"HeadOfLine", "p99-µs", "small stream beside bulk, 2 % loss, p99", false, 1, "µs", ""},
	{"HeadOfLine", "bulk-MB/s", "bulk stream meanwhile, 2 % loss", true, 1, "MB/s", ""},
}

// machine describes where the figures come from.
type machine struct {
	cpu, goos, goarch, cores, kernel, goVersion string
	runs                                        int
	// tcp says which TCP congestion control the systems' connections
	// run on (tcpCongestion), "" where not known.
	tcp string
}

func describeMachine(raw []byte) machine {
	m := machine{goos: runtime.GOOS, goarch: runtime.GOARCH, cores: strconv.Itoa(runtime.NumCPU()), goVersion: runtime.Version()}
	for _, line := range strings.Split(string(raw), "\n") {
		if c, ok := strings.CutPrefix(line, "cpu: "); ok {
			m.cpu = strings.TrimSpace(c)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	m.tcp = tcpCongestion()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(out))
	}
	return m
}

// ratio is Haven/other for r; ok is false when either is missing or the
// ratio is undefined.
func ratio(res results, r row, other string) (float64, bool) {
	h, ok1 := res.median(r.workload, r.havenSys(), r.unit)
	q, ok2 := res.median(r.workload, other, r.unit)
	if !ok1 || !ok2 || q == 0 {
		return 0, false
	}
	return h / q, true
}

// advantage is how many times better Haven is than quic-go on r: > 1 when
// Haven is better, +Inf when only Haven is at zero on a lower-is-better
// figure, 0 when only quic-go is; ok is false when a value is missing.
func advantage(res results, r row) (float64, bool) {
	h, ok1 := res.median(r.workload, r.havenSys(), r.unit)
	q, ok2 := res.median(r.workload, "QUIC", r.unit)
	if !ok1 || !ok2 {
		return 0, false
	}
	if !r.higherBetter {
		h, q = q, h
	}
	switch {
	case h == 0 && q == 0:
		return 1, true
	case q == 0:
		return math.Inf(1), true
	}
	return h / q, true
}

func format(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}

func cell(res results, r row, system string) string {
	v, ok := res.median(r.workload, system, r.unit)
	if !ok {
		return "—"
	}
	s := format(v * r.scale)
	if r.shown != "" {
		s += " " + r.shown
	}
	return s
}

func markdown(all results, m machine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Haven vs quic-go vs TLS 1.3/TCP\n\n")
	fmt.Fprintf(&b, "Generated by `go run ./report` on %s. Medians of %d runs; every run goes through\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), m.runs)
	fmt.Fprintf(&b, "each benchmark once under each condition, the systems one after the other. Machine: %s, %s cores, %s/%s,\n", orUnknown(m.cpu), m.cores, m.goos, m.goarch)
	fmt.Fprintf(&b, "kernel %s, %s. Both ends in one process; each system at its defaults.\n", orUnknown(m.kernel), m.goVersion)
	if m.tcp != "" {
		fmt.Fprintf(&b, "%s\n", m.tcp)
	}
	for i, cond := range all.conds {
		res := all.in(cond)
		title := conditions[cond].title
		if title == "" {
			title = cond
		}
		if i == 0 && len(all.conds) > 1 {
			title += " — the headline"
		}
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		fmt.Fprintf(&b, "| workload | Haven | quic-go | TLS 1.3/TCP | Haven/quic-go | Haven/TLS | better | Haven ahead of quic-go? |\n")
		fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---|---|\n")
		for _, r := range rows {
			if _, ok := res.median(r.workload, r.havenSys(), r.unit); !ok {
				if _, ok := res.median(r.workload, "QUIC", r.unit); !ok {
					continue
				}
			}
			rs, rt, verdict := "—", "—", "—"
			if x, ok := ratio(res, r, "QUIC"); ok {
				rs = format(x) + "×"
			}
			if x, ok := ratio(res, r, "TLS"); ok {
				rt = format(x) + "×"
			}
			if a, ok := advantage(res, r); ok {
				switch {
				case math.IsInf(a, 1):
					verdict = "yes (Haven at 0)"
				case a == 0:
					verdict = "no (quic-go at 0)"
				case a >= 1.05:
					verdict = "yes, " + format(a) + "×"
				case a > 1/1.05:
					verdict = "even"
				default:
					verdict = "no, " + format(1/a) + "× behind"
				}
			}
			dir := "lower"
			if r.higherBetter {
				dir = "higher"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.label,
				cell(res, r, r.havenSys()), cell(res, r, "QUIC"), cell(res, r, "TLS"), rs, rt, dir, verdict)
		}
		multipathLine(&b, res)
		bbrLine(&b, res)
		iperfLine(&b, res)
	}
	if len(all.failed) > 0 {
		b.WriteString("\n**Failures** (their figures have fewer runs than the others):\n\n")
		for _, f := range all.failed {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	b.WriteString("\n`—`: the workload does not apply (TLS over TCP has no datagrams and cannot go through the\nUDP loss proxy) or the ratio is undefined. The chart, results.svg, shows the first condition.\n")
	return b.String()
}

// multipathLine reports BenchmarkMultipathLegs, a Haven-only figure (no
// other system uses two paths in one connection): its aggregation, two
// legs over one.
func multipathLine(b *strings.Builder, res results) {
	one, ok1 := res.median("MultipathLegs", "one", "MB/s")
	two, ok2 := res.median("MultipathLegs", "two", "MB/s")
	if !ok1 || !ok2 || one == 0 {
		return
	}
	fmt.Fprintf(b, "\nMulti-path (Haven only: neither quic-go nor TCP uses two paths in one connection): one stream\n"+
		"through two user-space proxy legs of 20 MB/s each way: %s MB/s; through one of them: %s MB/s;\n"+
		"**%s×** (issue #14 asks for 1.6× or more).\n", format(two), format(one), format(two/one))
}

// bbrLine reports BenchmarkBulkBBR: bulk with Haven's opt-in BBR beside
// its default, CUBIC, in the same runs (issue #15 asks that BBR lose no
// bulk throughput at MTU 1,500).
func bbrLine(b *strings.Builder, res results) {
	cubic, ok1 := res.median("BulkBBR", "Haven", "MB/s")
	bbr, ok2 := res.median("BulkBBR", "HavenBBR", "MB/s")
	if !ok1 || !ok2 || cubic == 0 {
		return
	}
	fmt.Fprintf(b, "\nBBR (Haven's opt-in delay-based controller, Config.Congestion): bulk, 1 stream, %s MB/s against\n"+
		"%s MB/s with the default CUBIC in the same runs: **%s×**.\n", format(bbr), format(cubic), format(bbr/cubic))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// chart draws Haven's advantage over quic-go per figure as horizontal bars
// on a log2 scale around 1: right of the axis Haven is better, left worse.
// The iperf3 bar, the last, is Haven's forward pair against ssh -L.
func chart(res results, cond string) string {
	type bar struct {
		label string
		adv   float64
	}
	var bars []bar
	for _, r := range rows {
		if a, ok := advantage(res, r); ok {
			bars = append(bars, bar{r.label, a})
		}
	}
	if _, _, _, x, ok := iperfRatio(res); ok {
		bars = append(bars, bar{"iperf3 through haven forward, against ssh -L", x})
	}
	const (
		labelW = 330
		gap    = 80 // room for the value of a bar pointing left
		plotW  = 440
		rowH   = 26
		top    = 56
		maxLog = 4.0 // ±16×
	)
	h := top + rowH*len(bars) + 40
	w := labelW + gap + plotW + 110
	axis := float64(labelW+gap) + plotW/2
	unit := plotW / 2 / maxLog
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="16" font-weight="bold">Haven vs quic-go: how many times better Haven is (log scale)</text>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="42" fill="#555">right of 1×: Haven better; left: the other better. Against quic-go unless the label names another. Medians of the same runs, %s.</text>`+"\n", escape(cond))
	for _, t := range []float64{1.0 / 16, 1.0 / 4, 1, 4, 16} {
		x := axis + math.Log2(t)*unit
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", x, top-6, x, top+rowH*len(bars), map[bool]string{true: "#000", false: "#ddd"}[t == 1])
		lbl := strconv.Itoa(int(t)) + "×"
		if t < 1 {
			lbl = "1/" + strconv.Itoa(int(1/t)) + "×"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x, top+rowH*len(bars)+18, lbl)
	}
	for i, br := range bars {
		y := top + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-10, y+17, escape(br.label))
		l := math.Log2(br.adv)
		shown := format(br.adv) + "×"
		if br.adv > 0 && br.adv < 1 {
			shown = "1/" + format(1/br.adv) + "×"
		}
		switch {
		case math.IsInf(br.adv, 1):
			l, shown = maxLog, "Haven at 0"
		case br.adv == 0:
			l, shown = -maxLog, "quic-go at 0"
		}
		l = math.Max(-maxLog, math.Min(maxLog, l))
		x0, x1 := axis, axis+l*unit
		color := "#2e8b57"
		if l < 0 {
			x0, x1, color = x1, axis, "#c0392b"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, y+5, math.Max(x1-x0, 1), rowH-10, color)
		tx, anchor := axis+l*unit+6, "start"
		if l < 0 {
			tx, anchor = axis+l*unit-6, "end"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="%s">%s</text>`+"\n", tx, y+17, anchor, escape(shown))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func escape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}
