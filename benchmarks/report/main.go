// Command report runs the side-by-side benchmarks of this module several
// times, takes the median of each figure, and writes results.md (a
// Markdown table with Haven/quic-go ratios), results.svg (a bar chart of
// Haven's advantage per figure) and results.txt (the raw go test output,
// for benchstat). Run it from the benchmarks directory:
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
	flag.Parse()

	var raw []byte
	if *input != "" {
		b, err := os.ReadFile(*input)
		if err != nil {
			fatal(err)
		}
		raw = b
	} else {
		b, err := runSuite(*count, *bench, *benchtime)
		if err != nil {
			fatal(err)
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
	if err := os.WriteFile(filepath.Join(*outDir, "results.svg"), []byte(chart(res)), 0o644); err != nil {
		fatal(err)
	}
	fmt.Print(md)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

// runSuite builds the test binary of the package in the current directory
// and runs every benchmark count times, echoing the output to stderr.
func runSuite(count int, bench, benchtime string) ([]byte, error) {
	if _, err := os.Stat("go.mod"); err != nil {
		return nil, fmt.Errorf("run from the benchmarks directory (go run ./report): %w", err)
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
	var all bytes.Buffer
	for i := 1; i <= count; i++ {
		fmt.Fprintf(os.Stderr, "== run %d of %d\n", i, count)
		cmd := exec.Command(bin, "-test.run", "NONE", "-test.bench", bench, "-test.benchmem",
			"-test.benchtime", benchtime, "-test.count", "1", "-test.timeout", "60m")
		cmd.Stdout = io.MultiWriter(&all, os.Stderr)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("run %d: %w", i, err)
		}
	}
	return all.Bytes(), nil
}

// results holds every value, by workload, system and unit.
type results struct {
	values map[key][]float64
	runs   int // the most values of any one key: how many runs were parsed
}

type key struct{ workload, system, unit string }

// parse reads go test benchmark lines: "BenchmarkBulk/Haven-2  N  v unit  v unit ...".
func parse(r io.Reader) results {
	res := results{values: map[key][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
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
			k := key{workload, system, f[i+1]}
			res.values[k] = append(res.values[k], v)
			res.runs = max(res.runs, len(res.values[k]))
		}
	}
	return res
}

// median of the values for k; ok is false when there are none.
func (r results) median(workload, system, unit string) (float64, bool) {
	v := slices.Clone(r.values[key{workload, system, unit}])
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
}

// rows are the figures reported, in order.
var rows = []row{
	{"Bulk", "MB/s", "bulk, 1 stream, 64 KiB writes", true, 1, "MB/s"},
	{"BulkParallel8", "MB/s", "bulk, 8 streams in parallel", true, 1, "MB/s"},
	{"BulkBasePackets", "MB/s", "bulk, 1 stream, Haven at 1,452-byte packets (no PMTU discovery)", true, 1, "MB/s"},
	{"Bulk", "allocs/op", "bulk allocations per 64 KiB (both ends)", false, 1, "allocs"},
	{"Handshake", "ns/op", "fresh session + first byte echoed + close (returning client, its socket kept)", false, 1e-3, "µs"},
	{"Handshake", "allocs/op", "fresh session allocations (both ends)", false, 1, "allocs"},
	{"HandshakeNewClient", "ns/op", "the same with a new client socket each time", false, 1e-3, "µs"},
	{"HandshakeNewClient", "allocs/op", "allocations with a new client socket (both ends)", false, 1, "allocs"},
	{"HandshakeNewPeers", "ns/op", "new client socket, 1,024 Haven client keys (nothing cached)", false, 1e-3, "µs"},
	{"OpenEcho", "ns/op", "stream open + 1-byte echo + close", false, 1e-3, "µs"},
	{"ReqResp", "p50-µs", "request/response 64 B, p50", false, 1, "µs"},
	{"ReqResp", "p99-µs", "request/response 64 B, p99", false, 1, "µs"},
	{"IdleMemory", "B/session", "idle memory per session (both ends)", false, 1.0 / 1024, "KiB"},
	{"IdleMemory", "goroutines/session", "goroutines per idle session (both ends)", false, 1, ""},
	{"IdleMemory", "srv-goroutines/session", "server goroutines per idle session", false, 1, ""},
	{"Datagram", "recv-MB/s", "datagrams 1,200 B, received", true, 1, "MB/s"},
	{"Datagram", "loss-%", "datagrams 1,200 B, loss", false, 1, "%"},
	{"HeadOfLine", "p50-µs", "small stream beside bulk, 2 % loss, p50", false, 1, "µs"},
	{"HeadOfLine", "p99-µs", "small stream beside bulk, 2 % loss, p99", false, 1, "µs"},
	{"HeadOfLine", "bulk-MB/s", "bulk stream meanwhile, 2 % loss", true, 1, "MB/s"},
}

// machine describes where the figures come from.
type machine struct {
	cpu, goos, goarch, cores, kernel, goVersion string
	runs                                        int
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
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(out))
	}
	return m
}

// ratio is Haven/QUIC for r; ok is false when either is missing or the
// ratio is undefined.
func ratio(res results, r row) (float64, bool) {
	h, ok1 := res.median(r.workload, "Haven", r.unit)
	q, ok2 := res.median(r.workload, "QUIC", r.unit)
	if !ok1 || !ok2 || q == 0 {
		return 0, false
	}
	return h / q, true
}

// advantage is how many times better Haven is than quic-go on r: > 1 when
// Haven is better, +Inf when only Haven is at zero on a lower-is-better
// figure, 0 when only quic-go is; ok is false when a value is missing.
func advantage(res results, r row) (float64, bool) {
	h, ok1 := res.median(r.workload, "Haven", r.unit)
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

func markdown(res results, m machine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Haven vs quic-go vs TLS 1.3/TCP\n\n")
	fmt.Fprintf(&b, "Generated by `go run ./report` on %s. Medians of %d runs; every run goes through\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), m.runs)
	fmt.Fprintf(&b, "each benchmark once, the systems one after the other. Machine: %s, %s cores, %s/%s,\n", orUnknown(m.cpu), m.cores, m.goos, m.goarch)
	fmt.Fprintf(&b, "kernel %s, %s. Loopback only; both ends in one process.\n\n", orUnknown(m.kernel), m.goVersion)
	fmt.Fprintf(&b, "| workload | Haven | quic-go | TLS 1.3/TCP | Haven/quic-go | better | Haven ahead? |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---|---|\n")
	for _, r := range rows {
		if _, ok := res.median(r.workload, "Haven", r.unit); !ok {
			if _, ok := res.median(r.workload, "QUIC", r.unit); !ok {
				continue
			}
		}
		rs, verdict := "—", "—"
		if x, ok := ratio(res, r); ok {
			rs = format(x) + "×"
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
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.label,
			cell(res, r, "Haven"), cell(res, r, "QUIC"), cell(res, r, "TLS"), rs, dir, verdict)
	}
	b.WriteString("\n`—`: the workload does not apply (TLS over TCP has no datagrams and cannot go through the\nUDP loss proxy) or the ratio is undefined. The chart is results.svg.\n")
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// chart draws Haven's advantage over quic-go per figure as horizontal bars
// on a log2 scale around 1: right of the axis Haven is better, left worse.
func chart(res results) string {
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
	fmt.Fprintf(&b, `<text x="10" y="42" fill="#555">right of 1×: Haven better; left: quic-go better. Medians, loopback, same runs.</text>`+"\n")
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
