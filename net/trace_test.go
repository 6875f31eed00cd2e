package net

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/udpproxy"
)

// traceBuf collects a session's trace and says when the session closed it.
type traceBuf struct {
	mu     sync.Mutex // guards b against the test reading it early
	b      bytes.Buffer
	closed chan struct{}
}

func (t *traceBuf) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.Write(p)
}

func (t *traceBuf) Close() error { close(t.closed); return nil }

// traceEvent is a trace line as the tests read it.
type traceEvent struct {
	Time float64        `json:"time"`
	Name string         `json:"name"`
	Data map[string]any `json:"data"`
}

// readTrace parses a trace: the header line, then one event per line.
func readTrace(t *testing.T, raw []byte) (header map[string]any, events []traceEvent) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for i := 0; sc.Scan(); i++ {
		if i == 0 {
			if err := json.Unmarshal(sc.Bytes(), &header); err != nil {
				t.Fatalf("header line %q: %v", sc.Text(), err)
			}
			continue
		}
		var ev traceEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Name == "" || ev.Data == nil {
			t.Fatalf("line %d %q: %v", i+1, sc.Text(), err)
		}
		events = append(events, ev)
	}
	return header, events
}

// TestTraceLossyTransfer: the client's trace of an 8 MiB echo through a
// proxy that drops 3 % of the packets each way is valid JSON lines, and
// shows every loss (one recovery:packet_lost per packet the session
// declared lost) and every retransmission (the retransmitted bytes of the
// packets sent add up to the session's count), the RTT, the channel's
// life and the header (issue #16).
func TestTraceLossyTransfer(t *testing.T) {
	addr, _ := proxyTo(t, echoListener(t, ListenConfig{}), udpproxy.Config{Loss: 0.03, Seed: 5})
	tb := &traceBuf{closed: make(chan struct{})}
	d := &Dialer{Config: Config{Trace: func(TraceInfo) io.Writer { return tb }}}
	defer d.Close()
	c, err := d.DialContext(context.Background(), "haven4", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := c.(*Conn).Session()
	run := startEcho(c, patterned(8<<20, 3))
	run.resume()
	run.finish(t, "traced echo")
	c.Close()
	s.Close(0, "done")
	select {
	case <-tb.closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the trace was not closed when the session ended")
	}
	st := s.Stats() // final: the trace ended with the session
	header, events := readTrace(t, tb.b.Bytes())
	if header["vantage_point"].(map[string]any)["type"] != "client" || header["peer"] == "" {
		t.Fatalf("header %v", header)
	}
	count := map[string]int{}
	retx := 0.0
	var lastTime float64
	for _, ev := range events {
		count[ev.Name]++
		if ev.Time < lastTime {
			t.Fatalf("time goes back: %v after %v", ev.Time, lastTime)
		}
		lastTime = ev.Time
		switch ev.Name {
		case "transport:packet_sent":
			retx += ev.Data["retransmitted_bytes"].(float64)
		case "recovery:packet_lost":
			if tr := ev.Data["trigger"]; tr != "reordering_threshold" && tr != "time_threshold" && tr != "path_abandoned" {
				t.Fatalf("loss with trigger %v", tr)
			}
		case "recovery:metrics_updated":
			if ev.Data["smoothed_rtt"].(float64) <= 0 || ev.Data["congestion_window"].(float64) <= 0 {
				t.Fatalf("metrics %v", ev.Data)
			}
		}
	}
	t.Logf("%d events: %v; %d lost, %d bytes retransmitted", len(events), count, st.PacketsLost, st.StreamBytesRetransmitted)
	if st.PacketsLost == 0 || st.StreamBytesRetransmitted == 0 {
		t.Fatal("nothing was lost: the test proves nothing")
	}
	if count["recovery:packet_lost"] != int(st.PacketsLost) {
		t.Errorf("%d packet_lost events, the session declared %d packets lost", count["recovery:packet_lost"], st.PacketsLost)
	}
	if uint64(retx) != st.StreamBytesRetransmitted {
		t.Errorf("packet_sent events carry %v retransmitted bytes, the session counted %d", retx, st.StreamBytesRetransmitted)
	}
	if uint64(count["transport:packet_sent"]) != st.PacketsSent || uint64(count["transport:packet_received"]) != st.PacketsReceived {
		t.Errorf("%d sent and %d received events; the session counted %d and %d",
			count["transport:packet_sent"], count["transport:packet_received"], st.PacketsSent, st.PacketsReceived)
	}
	if count["haven:channel_opened"] == 0 || count["recovery:metrics_updated"] == 0 {
		t.Errorf("no channel or metrics events: %v", count)
	}
}

// TestTraceEnv: with HAVEN_TRACE set to a directory and no Config.Trace,
// each side's session writes a file there, named by the peer's key and
// the side, owner-only, with the header line first.
func TestTraceEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(TraceEnv, dir)
	ln := echoListener(t, ListenConfig{})
	d := &Dialer{}
	c, err := d.Dial("haven4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "traced")
	c.Close()
	d.Close() // the client's session ends, and its trace with it
	var client string
	for deadline := time.Now().Add(10 * time.Second); client == ""; time.Sleep(10 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(dir, "*-client.jsonl"))
		if len(files) == 1 {
			client = files[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client trace in %s", dir)
		}
	}
	key := ln.Addr().(*Addr).Key.String()[:16]
	if !strings.HasPrefix(filepath.Base(client), key) {
		t.Fatalf("trace %s not named by the server's key %s", client, key)
	}
	fi, err := os.Stat(client)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("trace file mode %v, %v", fi.Mode(), err)
	}
	raw, _ := os.ReadFile(client)
	if header, events := readTrace(t, raw); header["qlog_format"] != "JSON lines" || len(events) == 0 {
		t.Fatalf("client trace: header %v, %d events", header, len(events))
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*-server.jsonl")); len(files) != 1 {
		t.Fatalf("server traces %v, want one", files)
	}
}
