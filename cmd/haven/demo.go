package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	hnet "github.com/havenproto/haven/net"
)

const demoAbout = `Runs a Haven server and client in this process, over UDP on loopback, with
fresh keys. The client opens several stream channels on one session and sends
different amounts on each at the same time; the server echoes them back and
every byte is checked. Small echoes on a channel of their own measure the round
trip while the transfers run, and a datagram channel round-trips a few hundred
datagrams. A table shows what crossed. Takes a few seconds.

-scale F moves F times the default amounts (0 < F <= 1): each bulk channel's
bytes and the number of datagrams (at least one batch of 20), with the same
channels and the same table. -scale 0.01 moves about 1.7 MB instead of about
170 MB, little enough to decode a capture of it with the Wireshark dissector
(contrib/wireshark/README.md).
`

// demoSizes are what the bulk stream channels send (and get back), at
// -scale 1.
var demoSizes = []int64{1 << 20, 4 << 20, 16 << 20, 64 << 20}

const (
	demoDatagrams     = 400  // datagrams round-tripped, at -scale 1
	demoDatagramBatch = 20   // sent before waiting for their echoes
	demoDatagramSize  = 1200 // bytes each
	demoTimeout       = 60 * time.Second
)

// demoRow is one channel's line in the table.
type demoRow struct {
	kind       string
	sent, recv int64
	// For datagrams and probes: counts instead of byte totals.
	sentText, recvText string
	verified           bool
	took               time.Duration
	err                error
}

func cmdDemo(ctx context.Context, args []string, std stdio) error {
	c := newCommand("demo", "demo [-tcp] [-scale F]", demoAbout)
	tcp := c.Bool("tcp", false, "carry the client's session over the TCP fallback (haven4+tcp, docs/PROTOCOL.md §8) instead of UDP")
	scale := c.Float64("scale", 1, "move `F` times the default amounts, 0 < F <= 1 (0.01: about 1.7 MB instead of 170 MB)")
	if err := c.parse(args, 0, std.out); err != nil {
		return err
	}
	if !(*scale > 0 && *scale <= 1) {
		return usagef("demo: -scale %v: want 0 < F <= 1", *scale)
	}
	sizes, datagrams := demoAmounts(*scale)
	network, carrier := "haven4", "UDP"
	if *tcp {
		network, carrier = "haven4+tcp", "TCP (the fallback transport)"
	}
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()

	// The server: a Host with a fresh key, echoing streams and datagrams
	// on the default service, exactly as "haven serve -echo" does.
	lc := hnet.ListenConfig{}
	h, err := lc.ListenHost(ctx, "haven4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &server{mode: serveMode{echo: true}, log: std.err}
	if err := srv.start(h); err != nil {
		h.Close()
		return err
	}
	defer func() {
		srv.stopping.Store(true)
		h.Close()
		waitTimeout(&srv.wg, shutdownWait)
	}()
	addr := h.Addr().String()

	// The client: one Dialer, so one session and one handshake for every
	// stream channel. The first Dial makes the session; the round-trip
	// probe is opened on it at priority 0, ahead of the bulk channels.
	d := &hnet.Dialer{Timeout: 10 * time.Second}
	defer d.Close()
	t0 := time.Now()
	first, err := dialOn(ctx, d, network, addr, d.Timeout)
	if err != nil {
		return err
	}
	defer first.Close()
	handshake := time.Since(t0)
	session := first.(*hnet.Conn).Session()
	probe, err := session.OpenStream("", 0)
	if err != nil {
		return err
	}
	defer probe.Close()

	fmt.Fprintf(std.out, "Haven demo: a server and a client in this process, over %s on loopback\n\n", carrier)
	fmt.Fprintf(std.out, "server  %s  (fresh key; echoes stream channels and datagrams)\n", addr)
	fmt.Fprintf(std.out, "client  %s  (one Dialer: one session)\n", first.LocalAddr())
	fmt.Fprintf(std.out, "handshake and first channel: %s\n\n", ms(handshake))

	// Round trips on the idle session first, for comparison.
	idle, _ := pingStream(probe, 20, time.Second)

	rows := make([]demoRow, len(sizes)+2)
	var wg sync.WaitGroup
	start := time.Now()
	for i, size := range sizes {
		conn := first
		if i > 0 {
			if conn, err = dialOn(ctx, d, network, addr, d.Timeout); err != nil {
				return err
			}
			defer conn.Close()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows[i] = echoVerified(conn, size, uint64(i+1))
		}()
	}
	// While the transfers run: round trips of small echoes on the probe
	// channel (they do not wait behind the bulk data), and datagrams.
	bulkDone := make(chan struct{})
	var rtts, dgRTTs []time.Duration
	var side sync.WaitGroup
	side.Add(2)
	go func() {
		defer side.Done()
		rows[len(sizes)], rtts = pingVerified(probe, bulkDone)
	}()
	go func() {
		defer side.Done()
		var onSession *hnet.Session
		if *tcp {
			onSession = session // datagram channels ride the TCP session too
		}
		rows[len(sizes)+1], dgRTTs = datagramsVerified(ctx, h.Addr(), onSession, datagrams)
	}()
	wg.Wait()
	took := time.Since(start)
	close(bulkDone)
	side.Wait()
	stats := session.Stats()

	tw := tabwriter.NewWriter(std.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "channel\tkind\tsent\treceived\tverified\ttime\tMB/s each way\n")
	var crossed int64
	allOK := true
	for i, r := range rows {
		sent, recv, rate := bytesText(r.sent), bytesText(r.recv), fmt.Sprintf("%.1f", mbps(r.sent, r.took))
		if r.sentText != "" {
			sent, recv, rate = r.sentText, r.recvText, "-"
		}
		ok := "yes"
		if !r.verified {
			ok, allOK = "NO", false
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, r.kind, sent, recv, ok, seconds(r.took), rate)
		crossed += r.sent + r.recv
	}
	tw.Flush()

	i50, i99 := percentiles(idle)
	p50, p99 := percentiles(rtts)
	dp50, dp99 := percentiles(dgRTTs)
	dg := rows[len(rows)-1]
	fmt.Fprintf(std.out, "\n")
	tw = tabwriter.NewWriter(std.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "datagrams\t%d sent, %d received back (%d B each), %s\n", dg.sent/demoDatagramSize, dg.recv/demoDatagramSize, demoDatagramSize, verifiedWord(dg.verified))
	fmt.Fprintf(tw, "RTT, idle\tp50 %s, p99 %s  (%d samples on channel %d before the transfers)\n", ms(i50), ms(i99), len(idle), len(sizes)+1)
	fmt.Fprintf(tw, "RTT, under load\tp50 %s, p99 %s  (%d samples on channel %d, priority 0, while the transfers ran)\n", ms(p50), ms(p99), len(rtts), len(sizes)+1)
	fmt.Fprintf(tw, "RTT, datagrams\tp50 %s, p99 %s  (%d samples)\n", ms(dp50), ms(dp99), len(dgRTTs))
	streams := uint64(len(sizes) + 1)
	switch {
	case !*tcp && stats.ChannelsOpened == streams:
		fmt.Fprintf(tw, "handshakes\t1 for all %d stream channels (one Dialer, one session); 1 more for the datagram socket\n", streams)
	case *tcp && stats.ChannelsOpened == streams+1:
		fmt.Fprintf(tw, "handshakes\t1 for all %d stream channels and the datagram channel (one Dialer, one session over %s)\n", streams, session.Transport())
	default:
		fmt.Fprintf(tw, "handshakes\t%d stream channels, but the session counted %d channels\n", streams, stats.ChannelsOpened)
	}
	fmt.Fprintf(tw, "session packets\t%d sent, %d received, %d lost, %s retransmitted\n", stats.PacketsSent, stats.PacketsReceived, stats.PacketsLost, bytesText(int64(stats.StreamBytesRetransmitted)))
	fmt.Fprintf(tw, "session RTT\tsmoothed %s, min %s\n", ms(stats.SmoothedRTT), ms(stats.MinRTT))
	fmt.Fprintf(tw, "total\t%s crossed in %s (%.1f MB/s)\n", bytesText(crossed), seconds(took), mbps(crossed, took))
	tw.Flush()
	if !allOK {
		var msgs []string
		for i, r := range rows {
			if !r.verified {
				msgs = append(msgs, fmt.Sprintf("channel %d: %v", i+1, r.err))
			}
		}
		return fmt.Errorf("demo: not everything came back intact: %s", strings.Join(msgs, "; "))
	}
	fmt.Fprintln(std.out, "\nall verified: every byte came back as sent")
	return nil
}

// demoAmounts returns the bulk channels' sizes and the number of datagrams
// at scale (0 < scale <= 1): every size scaled, at least one byte; the
// datagrams scaled to whole batches, at least one.
func demoAmounts(scale float64) (sizes []int64, datagrams int) {
	for _, s := range demoSizes {
		sizes = append(sizes, max(1, int64(float64(s)*scale)))
	}
	batches := max(1, int(float64(demoDatagrams/demoDatagramBatch)*scale+0.5))
	return sizes, batches * demoDatagramBatch
}

func verifiedWord(ok bool) string {
	if ok {
		return "all verified"
	}
	return "NOT verified"
}

// echoVerified sends size pseudo-random bytes (a stream seeded by seed) on
// c, half-closes, and checks that exactly the same bytes come back.
func echoVerified(c halfCloser, size int64, seed uint64) demoRow {
	r := demoRow{kind: "stream"}
	start := time.Now()
	c.SetDeadline(start.Add(demoTimeout))
	werr := make(chan error, 1)
	go func() {
		gen := rand.NewChaCha8(seedBytes(seed))
		buf := make([]byte, 64<<10)
		for r.sent < size {
			b := buf[:min(int64(len(buf)), size-r.sent)]
			gen.Read(b)
			n, err := c.Write(b)
			r.sent += int64(n)
			if err != nil {
				werr <- err
				return
			}
		}
		werr <- c.CloseWrite()
	}()
	want := rand.NewChaCha8(seedBytes(seed))
	buf := make([]byte, 64<<10)
	exp := make([]byte, 64<<10)
	same := true
	var rerr error
	for i := 0; i < 1<<20; i++ {
		n, err := c.Read(buf)
		if n > 0 {
			want.Read(exp[:n])
			same = same && bytes.Equal(buf[:n], exp[:n])
			r.recv += int64(n)
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	r.took = time.Since(start)
	r.err = errors.Join(<-werr, rerr)
	if r.err == nil && !same {
		r.err = errors.New("the echo differs from what was sent")
	}
	if r.err == nil && r.recv != size {
		r.err = fmt.Errorf("%d bytes came back, %d were sent", r.recv, size)
	}
	r.verified = r.err == nil
	return r
}

func seedBytes(seed uint64) (s [32]byte) {
	binary.LittleEndian.PutUint64(s[:], seed)
	return s
}

// pingVerified round-trips small numbered messages on c every few
// milliseconds until done closes (and at least a few times).
func pingVerified(c halfCloser, done <-chan struct{}) (demoRow, []time.Duration) {
	r := demoRow{kind: "stream", verified: true}
	msg := make([]byte, benchPing)
	buf := make([]byte, benchPing)
	var rtts []time.Duration
	start := time.Now()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
loop:
	for i := 0; i < 100000; i++ {
		if i >= 10 {
			select {
			case <-done:
				break loop
			case <-t.C:
			}
		}
		rtt, err := pingOnce(c, msg, buf, 10*time.Second)
		if err != nil {
			r.err, r.verified = err, false
			break
		}
		r.sent += benchPing
		r.recv += benchPing
		rtts = append(rtts, rtt)
	}
	r.took = time.Since(start)
	r.sentText = fmt.Sprintf("%d × %d B", len(rtts), benchPing)
	r.recvText = r.sentText
	return r, rtts
}

// datagramsVerified round-trips count numbered datagrams (a multiple of
// demoDatagramBatch) through the server's datagram echo, in batches: from
// a socket of its own, or, given a session, on a datagram channel of that
// session.
func datagramsVerified(ctx context.Context, server net.Addr, s *hnet.Session, count int) (demoRow, []time.Duration) {
	r := demoRow{kind: "datagram"}
	start := time.Now()
	var pc net.PacketConn
	var err error
	if s != nil {
		pc, err = s.OpenDatagram("", 3)
	} else {
		lc := hnet.ListenConfig{}
		pc, err = lc.ListenPacket(ctx, "haven4", "127.0.0.1:0")
	}
	if err != nil {
		r.err = err
		return r, nil
	}
	defer pc.Close()
	run := newDatagramRun(pc, server, demoDatagramSize)
	sentAt := map[uint64]bool{}
	var rtts []time.Duration
	intact := true
	for batch := 0; batch < count/demoDatagramBatch; batch++ {
		for range demoDatagramBatch {
			seq, err := run.send()
			if err != nil {
				r.err = err
				return r, rtts
			}
			sentAt[seq] = true
			r.sent += demoDatagramSize
		}
		// The first batch waits for the handshake too.
		wait := time.Second
		if batch == 0 {
			wait = 10 * time.Second
		}
		deadline := time.Now().Add(wait)
		for got := 0; got < demoDatagramBatch; got++ {
			seq, rtt, err := run.recv(deadline)
			if err != nil {
				break // lost: counted below
			}
			if !sentAt[seq] || !bytes.Equal(run.in[16:demoDatagramSize], run.out[16:]) {
				intact = false
			}
			delete(sentAt, seq)
			r.recv += demoDatagramSize
			rtts = append(rtts, rtt)
		}
	}
	r.took = time.Since(start)
	r.sentText = fmt.Sprintf("%d × %d B", r.sent/demoDatagramSize, demoDatagramSize)
	r.recvText = fmt.Sprintf("%d × %d B", r.recv/demoDatagramSize, demoDatagramSize)
	switch {
	case !intact:
		r.err = errors.New("a datagram came back altered or twice")
	case r.recv != r.sent:
		r.err = fmt.Errorf("%d of %d datagrams came back", r.recv/demoDatagramSize, r.sent/demoDatagramSize)
	}
	r.verified = r.err == nil
	return r, rtts
}
