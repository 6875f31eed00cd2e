package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	hnet "github.com/havenproto/haven/net"
)

const benchAbout = `Measures a running server (haven serve -echo, or -discard): throughput over
CHANNELS parallel stream channels, and round-trip times of small echoes on a
channel of their own, idle and while the transfer runs. With -datagrams it
sends datagrams instead and reports their loss and round-trip times.

Throughput counts what the server has taken: each channel half-closes when
done and is timed until the server ends its side. The run stops after -d, or
after -n bytes (with -n alone there is no time limit). Progress is printed to
stderr every second (twice in a shorter run), the results to stdout.
`

const (
	benchChunk     = 64 << 10               // bytes per stream write
	benchPing      = 32                     // bytes per RTT probe
	benchDrain     = 30 * time.Second       // bound on the end of a run
	benchLoadEvery = 10 * time.Millisecond  // RTT probe interval under load
	benchIdlePings = 200                    // idle RTT probes, at most
	benchIdleTime  = 500 * time.Millisecond // and for at most this long
)

type benchOpts struct {
	addr      string
	bytes     int64
	channels  int
	duration  time.Duration
	size      int
	service   string
	timeout   time.Duration
	cfg       hnet.Config // the client's identity (-key)
	out, errw io.Writer
}

func cmdBench(ctx context.Context, args []string, std stdio) error {
	c := newCommand("bench", "bench [-key FILE] [-cipher NAME] [-n BYTES] [-c CHANNELS] [-d DURATION] [-datagrams] [-size BYTES] ADDR", benchAbout)
	keyPath := c.String("key", "", "the client's private key `FILE` (mode 0600), for servers that list it in -authorized-keys (default: a fresh key)")
	cipher := cipherFlag(c)
	var n, size sizeFlag = 0, 1200
	c.Var(&n, "n", "stop after sending `BYTES` in all (e.g. 1GiB; default: no limit)")
	channels := c.Int("c", 4, "parallel stream `CHANNELS`")
	duration := c.Duration("d", 5*time.Second, "stop after `DURATION`")
	datagrams := c.Bool("datagrams", false, "send datagrams (to the default datagram service) instead of streams")
	c.Var(&size, "size", "datagram size in `BYTES` with -datagrams (16 to 65507)")
	service := c.String("service", "", "the service `NAME` to use (default: the default service)")
	timeout := c.Duration("timeout", dialTimeoutDefault, "bound on the handshake and each channel open")
	if err := c.parse(args, 1, std.out); err != nil {
		return err
	}
	o := benchOpts{addr: c.Arg(0), bytes: int64(n), channels: *channels, duration: *duration,
		size: int(size), service: *service, timeout: *timeout, out: std.out, errw: std.err}
	if o.bytes > 0 && !c.isSet("d") {
		o.duration = 0
	}
	switch {
	case o.channels < 1 || o.channels > 1000:
		return usagef("bench: -c %d: want 1 to 1000 channels", o.channels)
	case o.duration < 0 || o.duration == 0 && o.bytes == 0:
		return usagef("bench: -d must be positive (or give -n)")
	case o.size < 16 || o.size > 65507:
		return usagef("bench: -size %d: want 16 to 65507 bytes", o.size)
	}
	if _, err := resolve(o.addr); err != nil {
		return err
	}
	cfg, err := clientConfig(*keyPath, *cipher)
	if err != nil {
		return err
	}
	o.cfg = cfg
	if *datagrams {
		return benchDatagrams(ctx, o)
	}
	return benchStreams(ctx, o)
}

// progress prints a line every second while a run lasts.
type progress struct {
	sent, recv atomic.Int64
	stop       chan struct{}
	done       sync.WaitGroup
}

// progressEvery is the progress interval for a run of d (0: no limit):
// a second, or half the run if that is shorter.
func progressEvery(d time.Duration) time.Duration {
	if d > 0 && d < 2*time.Second {
		return max(d/2, 10*time.Millisecond)
	}
	return time.Second
}

func startProgress(w io.Writer, unit string, every time.Duration) *progress {
	p := &progress{stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		start := time.Now()
		t := time.NewTicker(every)
		defer t.Stop()
		var lastSent int64
		last := start
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				sent, recv := p.sent.Load(), p.recv.Load()
				fmt.Fprintf(w, "%5.1f s  sent %10s  %8.1f MB/s  %s %10s\n",
					now.Sub(start).Seconds(), bytesText(sent), mbps(sent-lastSent, now.Sub(last)), unit, bytesText(recv))
				lastSent, last = sent, now
			}
		}
	}()
	return p
}

func (p *progress) end() { close(p.stop); p.done.Wait() }

// channelResult is one bulk channel's outcome.
type channelResult struct {
	sent, recv int64
	took       time.Duration
	err        error
}

func benchStreams(ctx context.Context, o benchOpts) error {
	d := &hnet.Dialer{Config: o.cfg, Timeout: o.timeout, Service: o.service}
	defer d.Close()
	t0 := time.Now()
	probe, err := dial(ctx, d, o.addr, o.timeout)
	if err != nil {
		return err
	}
	defer probe.Close()
	connect := time.Since(t0)

	// Idle round trips; a server that does not echo (-discard) has none.
	idle, echoes := pingStream(probe, benchIdlePings, benchIdleTime)
	var loaded []time.Duration
	if !echoes {
		probe.Close()
	}

	conns := make([]halfCloser, o.channels)
	for i := range conns {
		if conns[i], err = dial(ctx, d, o.addr, o.timeout); err != nil {
			return err
		}
		defer conns[i].Close()
	}
	fmt.Fprintf(o.errw, "bench: %d stream channels to %s\n", o.channels, o.addr)
	p := startProgress(o.errw, "back", progressEvery(o.duration))
	payload := make([]byte, benchChunk)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	stopAt := time.Time{}
	if o.duration > 0 {
		stopAt = time.Now().Add(o.duration)
	}
	perChannel := int64(0)
	if o.bytes > 0 {
		perChannel = (o.bytes + int64(o.channels) - 1) / int64(o.channels)
	}
	results := make([]channelResult, o.channels)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = bulk(c, payload, perChannel, stopAt, p)
		}()
	}
	loadDone := make(chan struct{})
	var pingWG sync.WaitGroup
	if echoes {
		pingWG.Add(1)
		go func() {
			defer pingWG.Done()
			loaded = pingUntil(probe, loadDone)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(loadDone)
	pingWG.Wait()
	p.end()

	var stats string
	if s, ok := conns[0].(*hnet.Conn); ok {
		st := s.Session().Stats()
		stats = fmt.Sprintf("packets sent %d, received %d, lost %d; retransmitted %s; smoothed RTT %s",
			st.PacketsSent, st.PacketsReceived, st.PacketsLost, bytesText(int64(st.StreamBytesRetransmitted)), ms(st.SmoothedRTT))
	}
	fmt.Fprintf(o.out, "haven bench: %s\n%d stream channels, handshake and first channel in %s\n\n", o.addr, o.channels, ms(connect))
	tw := tabwriter.NewWriter(o.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	back := "echoed"
	if !echoes {
		back = "returned"
	}
	fmt.Fprintf(tw, "channel\tsent\t%s\ttime\tMB/s\tMbit/s\t\n", back)
	var total channelResult
	var firstErr error
	for i, r := range results {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.1f\t%.1f\t\n", i+1, bytesText(r.sent), bytesText(r.recv), seconds(r.took), mbps(r.sent, r.took), 8*mbps(r.sent, r.took))
		total.sent += r.sent
		total.recv += r.recv
		if r.err != nil && firstErr == nil {
			firstErr = fmt.Errorf("channel %d: %w", i+1, r.err)
		}
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t%s\t%.1f\t%.1f\t\n", bytesText(total.sent), bytesText(total.recv), seconds(took), mbps(total.sent, took), 8*mbps(total.sent, took))
	tw.Flush()
	fmt.Fprintln(o.out)
	printRTT(o.out, idle, loaded, echoes)
	if stats != "" {
		fmt.Fprintf(o.out, "\nsession: %s\n", stats)
	}
	return firstErr
}

// bulk sends on c until stopAt or quota bytes (whichever is set and comes
// first), half-closes, and reads what comes back until the server ends.
func bulk(c halfCloser, payload []byte, quota int64, stopAt time.Time, p *progress) channelResult {
	start := time.Now()
	var r channelResult
	recvDone := make(chan error, 1)
	go func() {
		buf := make([]byte, benchChunk)
		for {
			n, err := c.Read(buf)
			r.recv += int64(n)
			p.recv.Add(int64(n))
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				recvDone <- err
				return
			}
		}
	}()
	var werr error
	for quota == 0 || r.sent < quota {
		if !stopAt.IsZero() && !time.Now().Before(stopAt) {
			break
		}
		b := payload
		if quota > 0 && quota-r.sent < int64(len(b)) {
			b = b[:quota-r.sent]
		}
		n, err := c.Write(b)
		r.sent += int64(n)
		p.sent.Add(int64(n))
		if err != nil {
			werr = err
			break
		}
	}
	if werr == nil {
		werr = c.CloseWrite()
	}
	if werr != nil {
		c.Close()
	}
	c.SetReadDeadline(time.Now().Add(benchDrain))
	rerr := <-recvDone
	r.took = time.Since(start)
	r.err = errors.Join(werr, rerr)
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		r.err = fmt.Errorf("the server did not end the channel within %v of the end of sending", benchDrain)
	}
	return r
}

// pingStream sends up to count small messages on c, one at a time, for at
// most limit, and returns their round-trip times; echoes is false when
// the first one got no answer within a second (a server that discards).
func pingStream(c halfCloser, count int, limit time.Duration) (rtts []time.Duration, echoes bool) {
	msg := make([]byte, benchPing)
	buf := make([]byte, benchPing)
	end := time.Now().Add(limit)
	for i := 0; i < count && time.Now().Before(end); i++ {
		rtt, err := pingOnce(c, msg, buf, time.Second)
		if err != nil {
			return rtts, len(rtts) > 0
		}
		rtts = append(rtts, rtt)
	}
	return rtts, len(rtts) > 0
}

// pingUntil pings every benchLoadEvery until done closes.
func pingUntil(c halfCloser, done <-chan struct{}) []time.Duration {
	msg := make([]byte, benchPing)
	buf := make([]byte, benchPing)
	var rtts []time.Duration
	t := time.NewTicker(benchLoadEvery)
	defer t.Stop()
	for i := 0; i < 1e6; i++ {
		select {
		case <-done:
			return rtts
		case <-t.C:
		}
		rtt, err := pingOnce(c, msg, buf, 5*time.Second)
		if err != nil {
			return rtts
		}
		rtts = append(rtts, rtt)
	}
	return rtts
}

func pingOnce(c halfCloser, msg, buf []byte, wait time.Duration) (time.Duration, error) {
	start := time.Now()
	binary.BigEndian.PutUint64(msg, uint64(start.UnixNano()))
	c.SetDeadline(start.Add(wait))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return 0, err
	}
	if string(buf) != string(msg) {
		return 0, errors.New("echo differs from what was sent")
	}
	return time.Since(start), nil
}

func printRTT(w io.Writer, idle, loaded []time.Duration, echoes bool) {
	if !echoes {
		fmt.Fprintln(w, "round trip: none measured (the server does not echo; run it with -echo)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "round trip\tsamples\tp50\tp99\t\n")
	for _, row := range []struct {
		name string
		s    []time.Duration
	}{{"idle", idle}, {"under load", loaded}} {
		p50, p99 := percentiles(row.s)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t\n", row.name, len(row.s), ms(p50), ms(p99))
	}
	tw.Flush()
}

// benchDatagrams measures datagram round trips against an echoing server,
// keeping a bounded number in flight.
func benchDatagrams(ctx context.Context, o benchOpts) error {
	raddr, err := resolve(o.addr)
	if err != nil {
		return err
	}
	network, local := "haven4", "0.0.0.0:0"
	if raddr.Addr.Addr().Is6() {
		network, local = "haven6", "[::]:0"
	}
	lc := hnet.ListenConfig{Config: o.cfg, Service: o.service}
	pc, err := lc.ListenPacket(ctx, network, local)
	if err != nil {
		return err
	}
	defer pc.Close()
	r := newDatagramRun(pc, raddr, o.size)
	t0 := time.Now()
	if !r.firstEcho(o.timeout) {
		return fmt.Errorf("no datagram came back from %s within %v (is it running haven serve -echo, and is the key the server's?)", o.addr, o.timeout)
	}
	connect := time.Since(t0)
	idle := r.pings(benchIdlePings, benchIdleTime)

	fmt.Fprintf(o.errw, "bench: datagrams of %d bytes to %s\n", o.size, o.addr)
	p := startProgress(o.errw, "echoed", progressEvery(o.duration))
	stopAt := time.Time{}
	if o.duration > 0 {
		stopAt = time.Now().Add(o.duration)
	}
	res := r.blast(stopAt, o.bytes, p)
	p.end()

	lost := res.sent - res.recv
	fmt.Fprintf(o.out, "haven bench: %s\ndatagrams of %d bytes, first echo (handshake included) after %s\n\n", o.addr, o.size, ms(connect))
	tw := tabwriter.NewWriter(o.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "datagrams\tcount\tbytes\ttime\tper s\tMB/s\tMbit/s\t\n")
	for _, row := range []struct {
		name string
		n    int64
	}{{"sent", res.sent}, {"echoed", res.recv}} {
		b := row.n * int64(o.size)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.0f\t%.1f\t%.1f\t\n", row.name, row.n, bytesText(b), seconds(res.took),
			float64(row.n)/res.took.Seconds(), mbps(b, res.took), 8*mbps(b, res.took))
	}
	tw.Flush()
	fmt.Fprintf(o.out, "lost: %d (%.2f%%)\n\n", lost, 100*float64(lost)/float64(max(res.sent, 1)))
	printRTT(o.out, idle, res.rtts, true)
	return nil
}

// datagramRun is a datagram benchmark: each datagram carries a sequence
// number and its send time, so echoes give round-trip times.
type datagramRun struct {
	pc    net.PacketConn
	to    net.Addr
	size  int
	out   []byte
	in    []byte
	seq   uint64
	start time.Time
}

func newDatagramRun(pc net.PacketConn, to net.Addr, size int) *datagramRun {
	r := &datagramRun{pc: pc, to: to, size: size, out: make([]byte, size), in: make([]byte, 65536), start: time.Now()}
	for i := 16; i < size; i++ {
		r.out[i] = byte(i*31 + 7) // a pattern the demo checks echoes against
	}
	return r
}

// send writes the next datagram and returns its sequence number.
func (r *datagramRun) send() (uint64, error) {
	r.seq++
	binary.BigEndian.PutUint64(r.out, r.seq)
	binary.BigEndian.PutUint64(r.out[8:], uint64(time.Since(r.start)))
	_, err := r.pc.WriteTo(r.out, r.to)
	return r.seq, err
}

// recv reads one echo and returns its sequence number and round trip.
func (r *datagramRun) recv(deadline time.Time) (uint64, time.Duration, error) {
	r.pc.SetReadDeadline(deadline)
	for i := 0; i < 1000; i++ {
		n, _, err := r.pc.ReadFrom(r.in)
		if err != nil {
			return 0, 0, err
		}
		if n != r.size {
			continue // not one of ours
		}
		sent := time.Duration(binary.BigEndian.Uint64(r.in[8:]))
		return binary.BigEndian.Uint64(r.in), time.Since(r.start) - sent, nil
	}
	return 0, 0, errors.New("no echo among 1000 datagrams")
}

// firstEcho sends a datagram a second until one comes back (the first
// ones wait for the handshake).
func (r *datagramRun) firstEcho(timeout time.Duration) bool {
	end := time.Now().Add(timeout)
	for i := 0; i < 120 && time.Now().Before(end); i++ {
		if _, err := r.send(); err != nil {
			return false
		}
		if _, _, err := r.recv(time.Now().Add(time.Second)); err == nil {
			return true
		}
	}
	return false
}

// pings measures round trips one datagram at a time.
func (r *datagramRun) pings(count int, limit time.Duration) []time.Duration {
	var rtts []time.Duration
	end := time.Now().Add(limit)
	for i := 0; i < count && time.Now().Before(end); i++ {
		seq, err := r.send()
		if err != nil {
			break
		}
		for j := 0; j < 10; j++ { // skip late echoes of earlier ones
			got, rtt, err := r.recv(time.Now().Add(time.Second))
			if err != nil || got == seq {
				if err == nil {
					rtts = append(rtts, rtt)
				}
				break
			}
		}
	}
	return rtts
}

type blastResult struct {
	sent, recv int64
	took       time.Duration
	rtts       []time.Duration
}

// datagramWindow is how many datagrams may be in flight at once.
const datagramWindow = 128

// blast sends with up to datagramWindow in flight until stopAt or quota
// bytes, then waits a little for the last echoes.
func (r *datagramRun) blast(stopAt time.Time, quota int64, p *progress) blastResult {
	var res blastResult
	var recvd atomic.Int64
	var lastEcho time.Time // the receiver's, read after done
	firstSeq := r.seq + 1
	freed := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			seq, rtt, err := r.recv(time.Now().Add(2 * time.Second))
			if err != nil {
				return // deadline after the end, or closed
			}
			if seq < firstSeq {
				continue
			}
			if len(res.rtts) < 1<<21 {
				res.rtts = append(res.rtts, rtt)
			}
			recvd.Add(1)
			lastEcho = time.Now()
			p.recv.Add(int64(r.size))
			select {
			case freed <- struct{}{}:
			default:
			}
		}
	}()
	start := time.Now()
	var lostGuess int64
	for quota == 0 || res.sent*int64(r.size) < quota {
		if !stopAt.IsZero() && !time.Now().Before(stopAt) {
			break
		}
		if res.sent-recvd.Load()-lostGuess >= datagramWindow {
			select {
			case <-freed:
			case <-time.After(50 * time.Millisecond):
				// No echo for a while: count what is in flight as lost.
				lostGuess = res.sent - recvd.Load()
			}
			continue
		}
		if _, err := r.send(); err != nil {
			break
		}
		res.sent++
		p.sent.Add(int64(r.size))
	}
	sendEnd := time.Now()
	// Wait for the last echoes: until all are back or none came for a while.
drain:
	for i := 0; i < 100 && recvd.Load() < res.sent; i++ {
		select {
		case <-freed:
		case <-time.After(200 * time.Millisecond):
			break drain
		}
	}
	r.pc.SetReadDeadline(time.Now())
	<-done
	res.recv = recvd.Load()
	if lastEcho.After(sendEnd) {
		sendEnd = lastEcho
	}
	res.took = sendEnd.Sub(start)
	return res
}
