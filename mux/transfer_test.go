package mux

import (
	"testing"
	"time"

	"github.com/havenproto/haven/internal/netsim"
)

// transferCase is one network condition for the byte-exact transfer test.
type transferCase struct {
	name  string
	link  netsim.LinkConfig
	size  uint64
	limit time.Duration // simulated time allowed
}

const mib = 1 << 20

func transferCases() []transferCase {
	const bw = 200_000_000 // 200 Mbit/s, a 1 MB queue
	base := func(delay time.Duration) netsim.LinkConfig {
		return netsim.LinkConfig{Delay: delay, Bandwidth: bw, QueueBytes: 1 << 20, MTU: ethernetMTU}
	}
	with := func(l netsim.LinkConfig, f func(*netsim.LinkConfig)) netsim.LinkConfig { f(&l); return l }
	return []transferCase{
		{"loss0", base(10 * time.Millisecond), 16 * mib, time.Hour},
		{"loss2", with(base(10*time.Millisecond), func(l *netsim.LinkConfig) { l.Loss = 0.02 }), 16 * mib, time.Hour},
		{"loss10", with(base(10*time.Millisecond), func(l *netsim.LinkConfig) { l.Loss = 0.10 }), 16 * mib, 4 * time.Hour},
		{"loss30", with(base(5*time.Millisecond), func(l *netsim.LinkConfig) { l.Loss = 0.30 }), 16 * mib, 24 * time.Hour},
		{"burstloss", with(base(20*time.Millisecond), func(l *netsim.LinkConfig) {
			l.BurstEnter, l.BurstExit, l.BurstLoss = 0.01, 0.3, 1
		}), 16 * mib, 4 * time.Hour},
		{"reorder-dup", with(base(20*time.Millisecond), func(l *netsim.LinkConfig) {
			l.Jitter, l.Reorder, l.ReorderDelay, l.Duplicate = 5*time.Millisecond, 0.05, 15*time.Millisecond, 0.05
		}), 16 * mib, time.Hour},
		{"corrupt", with(base(10*time.Millisecond), func(l *netsim.LinkConfig) { l.Corrupt = 0.01 }), 16 * mib, time.Hour},
		{"delay1ms", base(time.Millisecond), 16 * mib, time.Hour},
		{"delay750ms", base(750 * time.Millisecond), 16 * mib, 4 * time.Hour},
		{"delay750ms-loss10", with(base(750*time.Millisecond), func(l *netsim.LinkConfig) { l.Loss = 0.10 }), 16 * mib, 48 * time.Hour},
		{"blackout2s", with(base(30*time.Millisecond), func(l *netsim.LinkConfig) {
			l.Blackouts = []netsim.Window{{Start: 500 * time.Millisecond, End: 2500 * time.Millisecond}}
		}), 16 * mib, time.Hour},
		{"mtu1280", with(base(10*time.Millisecond), func(l *netsim.LinkConfig) { l.MTU = 1452 + 16 }), 16 * mib, time.Hour},
	}
}

// TestTransfer sends 16 MiB one way under each condition and checks every
// byte; the blackout and loss cases prove recovery never stalls.
func TestTransfer(t *testing.T) {
	for _, tc := range transferCases() {
		t.Run(tc.name, func(t *testing.T) {
			net := netsim.New(7, tc.link, tc.link)
			a, b := pair(t, Config{}, Config{}, net.Now())
			appA, appB := newPeerApp(t, "A", a), newPeerApp(t, "B", b)
			appB.expect["bulk"] = tc.size
			appA.send("bulk", 3, tc.size)
			err := net.Run(simEnd{appA}, simEnd{appB}, allDone(appA, appB), tc.limit)
			for _, app := range []*peerApp{appA, appB} {
				if app.err != nil {
					t.Fatal(app.err)
				}
			}
			if err != nil {
				t.Fatalf("run: %v (A: %+v)", err, a.Stats())
			}
			if len(appB.in) != 1 {
				t.Fatalf("B accepted %d channels", len(appB.in))
			}
			for _, j := range appB.in {
				if !j.eof || j.read != tc.size {
					t.Fatalf("B read %d of %d bytes (eof %v)", j.read, tc.size, j.eof)
				}
				t.Logf("%s: %d MiB in %v simulated; A sent %d packets, %d lost, %d spurious",
					tc.name, tc.size/mib, j.finished.Sub(netsim.Start), a.Stats().PacketsSent, a.Stats().PacketsLost, a.Stats().SpuriousLosses)
			}
		})
	}
}
