package net

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/internal/udpproxy"
	"github.com/havenproto/haven/wire"
)

// The scenario suite (docs/SCENARIOS.md): Haven on impaired paths, one
// scenario per test case of the QUIC interop runner that applies to a
// transport like Haven (https://github.com/quic-interop/quic-interop-runner),
// named as there. Every path is a udpproxy on loopback in front of an echo
// listener. Both ends use the default Config and a zero Dialer, as users
// get them: nothing here shortens a timer or enlarges a buffer, and
// -short only lowers the number of handshakes. Each scenario asserts its
// outcome, never a speed, and logs its figures (go test -v -run
// TestScenarios ./net).

// scenario is one impaired path and what must survive it.
type scenario struct {
	name   string          // the interop runner's name for the case
	impair udpproxy.Config // the proxy's impairments, both directions
	run    func(t *testing.T, p *scenarioPath)
}

// dialLimit bounds each dial of the suite from outside, well beyond the
// default handshake limit, so that the Dialer's defaults decide and a hang
// still ends.
const dialLimit = 3 * time.Minute

func TestScenarios(t *testing.T) {
	handshakes := 20
	if testing.Short() {
		handshakes = 8
	}
	for _, sc := range []scenario{
		{"handshakeloss", udpproxy.Config{Loss: 0.30, Seed: 11}, dialSeries(handshakes, 0)},
		{"handshakecorruption", udpproxy.Config{Corrupt: 0.30, Seed: 12}, dialSeries(handshakes, 0)},
		{"longrtt", udpproxy.Config{Delay: 750 * time.Millisecond, Seed: 13}, dialSeries(3, 2)},
		{"blackout", udpproxy.Config{Seed: 14}, blackoutTransfer},
		{"rebind-port", udpproxy.Config{RotatePort: 200 * time.Millisecond, Seed: 15}, rebindTransfer},
		{"multiplexing", udpproxy.Config{Seed: 16}, manyChannels(2000)},
	} {
		t.Run(sc.name, func(t *testing.T) {
			// In parallel: the handshake scenarios spend most of their time
			// waiting for retransmission timers, which the others can use.
			t.Parallel()
			start := time.Now()
			sc.run(t, newScenarioPath(t, sc.impair))
			t.Logf("%s: done in %v", sc.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// scenarioPath is a scenario's path: an echo listener behind a proxy.
type scenarioPath struct {
	addr  string // the listener's key at the proxy's address
	px    *udpproxy.Proxy
	inits atomic.Int64 // handshake initiations the proxy read from clients

	mu    sync.Mutex
	peers map[PublicKey]int // stream channels accepted, per client identity
	last  *Conn             // the channel accepted last
}

// newScenarioPath starts an echo listener with the default Config and a
// proxy with cfg in front of it, both closed at cleanup.
func newScenarioPath(t *testing.T, cfg udpproxy.Config) *scenarioPath {
	t.Helper()
	// A host, closed at cleanup with its sessions (see echoListener).
	ln := hostListener(t)(new(ListenConfig).ListenHost(context.Background(), "haven4", "127.0.0.1:0"))
	p := &scenarioPath{peers: map[PublicKey]int{}}
	cfg.Tap = func(toTarget bool, pkt []byte) {
		if toTarget && len(pkt) == wire.InitPacketLen && wire.Flags(pkt[wire.OffFlags])&wire.FlagHandshake != 0 &&
			wire.MsgID(pkt[wire.HeaderLen]) == wire.MsgHandshakeInit {
			p.inits.Add(1)
		}
	}
	server := ln.Addr().(*Addr)
	var err error
	p.px, err = udpproxy.New(netip.MustParseAddrPort("127.0.0.1:0"), server.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.px.Close() })
	p.addr = (&Addr{Key: server.Key, Addr: p.px.Addr()}).String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hc := c.(*Conn)
			p.mu.Lock()
			p.peers[hc.Session().Peer()]++
			p.last = hc
			p.mu.Unlock()
			go func() {
				io.Copy(c, c)
				hc.CloseWrite()
				c.Close()
			}()
		}
	}()
	return p
}

// dial opens a channel with d, bounded by dialLimit.
func (p *scenarioPath) dial(d *Dialer) (*Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialLimit)
	defer cancel()
	c, err := d.DialContext(ctx, "haven4", p.addr)
	if err != nil {
		return nil, err
	}
	return c.(*Conn), nil
}

// accepted returns how many client identities the server accepted
// channels from, how many channels in all, and the last channel.
func (p *scenarioPath) accepted() (peers, channels int, last *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.peers {
		channels += n
	}
	return len(p.peers), channels, p.last
}

// lossFigures summarizes what the proxy did to the traffic.
func lossFigures(st udpproxy.Stats) string {
	return fmt.Sprintf("proxy: to server %d read, %d lost, %d corrupted; to client %d read, %d lost, %d corrupted",
		st.ToTarget.Received, st.ToTarget.Lost, st.ToTarget.Corrupted,
		st.ToClient.Received, st.ToClient.Lost, st.ToClient.Corrupted)
}

// spread is "min / median / max" of ds.
func spread(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("%v / %v / %v", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}

// rounded is ds to 10 ms, for logs.
func rounded(ds []time.Duration) []time.Duration {
	r := make([]time.Duration, len(ds))
	for i, d := range ds {
		r[i] = d.Round(10 * time.Millisecond)
	}
	return r
}

// dialSeries dials n fresh sessions in a row, each from a new zero Dialer
// (a new identity and socket, so a new handshake), and echoes 4 KiB on
// each. Every dial must succeed, and the server must see n distinct
// clients. With minInits > 1, some dial must have sent at least minInits
// initiations (longrtt: a 1.5 s round trip outlasts the first, 1 s
// retransmission timer, so the first flight is retransmitted; asserted
// for one dial of the series rather than each, so that a stalled timer on
// a loaded machine cannot fail the test).
func dialSeries(n, minInits int) func(*testing.T, *scenarioPath) {
	return func(t *testing.T, p *scenarioPath) {
		took := make([]time.Duration, 0, n)
		inits := make([]int64, 0, n)
		for i := range n {
			before := p.inits.Load()
			start := time.Now()
			d := &Dialer{}
			c, err := p.dial(d)
			el := time.Since(start)
			if err != nil {
				d.Close()
				t.Fatalf("dial %d of %d failed after %v and %d initiations: %v\n%s",
					i+1, n, el, p.inits.Load()-before, err, lossFigures(p.px.Stats()))
			}
			took = append(took, el)
			inits = append(inits, p.inits.Load()-before)
			err = echoCheck(c, i, 4<<10)
			c.Close()
			d.Close()
			if err != nil {
				t.Fatalf("dial %d of %d: %v", i+1, n, err)
			}
		}
		if peers, _, _ := p.accepted(); peers != n {
			t.Fatalf("the server saw %d client sessions, want %d (a new one per dial)", peers, n)
		}
		var total int64
		for _, k := range inits {
			total += k
		}
		if minInits > 1 && slices.Max(inits) < int64(minInits) {
			t.Fatalf("no dial sent more than %d initiation(s): %v", slices.Max(inits), inits)
		}
		t.Logf("%d of %d dials succeeded, each a new session; dial time min/median/max %s; "+
			"%d initiations (%d retransmissions); per dial %v initiations, %v; %s",
			n, n, spread(took), total, total-int64(n), inits, rounded(took), lossFigures(p.px.Stats()))
	}
}

// blackoutTransfer echoes 10 MB on one channel; when 30 % of it has come
// back, the path goes dark both ways for 2 s. Every byte must come back,
// in order, and the blackout must have dropped traffic both ways.
func blackoutTransfer(t *testing.T, p *scenarioPath) {
	const size = 10_000_000
	const dark = 2 * time.Second
	d := &Dialer{}
	defer d.Close()
	c, err := p.dial(d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	want := streamBytes(1, size)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	start := time.Now()
	got := make([]byte, 0, size)
	buf := make([]byte, 64<<10)
	var darkAt, resumed time.Time
	var gotAtDark int
	for len(got) <= size { // bounded: Read returns data or an error
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		now := time.Now()
		if darkAt.IsZero() && len(got) >= size*3/10 {
			darkAt, gotAtDark = now, len(got)
			p.px.Blackout(dark)
		}
		if n > 0 && !darkAt.IsZero() && resumed.IsZero() && now.Sub(darkAt) > dark {
			resumed = now
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v\n%s", len(got), err, lossFigures(p.px.Stats()))
		}
	}
	end := time.Now()
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%d bytes back, want %d byte-exact", len(got), size)
	}
	st := p.px.Stats()
	if st.ToTarget.BlackedOut == 0 || st.ToClient.BlackedOut == 0 || gotAtDark >= size {
		t.Fatalf("the blackout missed the transfer: %d bytes back before it; %+v", gotAtDark, st)
	}
	t.Logf("%d bytes echoed byte-exact in %v; the 2 s blackout began with %d bytes back and dropped "+
		"%d datagrams to the server and %d to the client; data flowed again %v after the path came back, "+
		"and the transfer ended %v after it",
		size, end.Sub(start).Round(time.Millisecond), gotAtDark, st.ToTarget.BlackedOut, st.ToClient.BlackedOut,
		resumed.Sub(darkAt.Add(dark)).Round(time.Millisecond), end.Sub(darkAt.Add(dark)).Round(time.Millisecond))
}

// rebindTransfer streams for 3 s on one channel while the proxy gives the
// client a new source port every 200 ms, and checks every echoed byte.
// The server must have moved to at least 5 new, validated paths.
func rebindTransfer(t *testing.T, p *scenarioPath) {
	const span = 3 * time.Second
	d := &Dialer{}
	defer d.Close()
	c, err := p.dial(d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	rot0 := p.px.Stats().Rotations
	start := time.Now()
	sent, got := echoPattern(t, c, 16<<10, func(int) bool { return time.Since(start) < span },
		func() string { return fmt.Sprintf("%d port changes", p.px.Stats().Rotations-rot0) })
	el := time.Since(start)
	if got != sent {
		t.Fatalf("echoed %d of %d bytes", got, sent)
	}
	rotations := p.px.Stats().Rotations - rot0
	_, _, srv := p.accepted()
	moves := srv.Session().PathChanges()
	if rotations < 5 || moves < 5 {
		t.Fatalf("%d port changes during the transfer, %d validated moves by the server; want 5 or more of each", rotations, moves)
	}
	t.Logf("%d bytes echoed byte-exact in %v across %d source-port changes; the server moved to %d validated new paths",
		got, el.Round(time.Millisecond), rotations, moves)
}

// manyChannels opens n channels on one session (from one zero Dialer, 8 at
// a time), echoes 512 bytes on each and closes it. All must succeed, on
// one session, after a single handshake's worth of initiations.
func manyChannels(n int) func(*testing.T, *scenarioPath) {
	return func(t *testing.T, p *scenarioPath) {
		const workers = 8
		d := &Dialer{}
		defer d.Close()
		start := time.Now()
		var next atomic.Int64
		var mu sync.Mutex
		sessions := map[*endpoint.Session]bool{}
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := int(next.Add(1) - 1); k < n; k = int(next.Add(1) - 1) {
					c, err := p.dial(d)
					if err != nil {
						errs <- fmt.Errorf("channel %d: %w", k, err)
						return
					}
					mu.Lock()
					sessions[c.Session().s] = true
					mu.Unlock()
					err = echoCheck(c, k, 512)
					c.Close()
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		el := time.Since(start)
		peers, channels, _ := p.accepted()
		if len(sessions) != 1 || peers != 1 || channels != n {
			t.Fatalf("%d client sessions, %d peers and %d channels at the server; want 1, 1 and %d",
				len(sessions), peers, channels, n)
		}
		t.Logf("%d channels opened, echoed and closed on one session in %v (%d at a time), %d handshake initiation(s)",
			n, el.Round(time.Millisecond), workers, p.inits.Load())
	}
}
