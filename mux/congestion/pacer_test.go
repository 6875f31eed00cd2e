package congestion

import (
	"math"
	"testing"
	"time"
)

func TestPacerBurstAllowance(t *testing.T) {
	p := NewPacer(mds, 10)
	if p.Capacity() != 10*mds {
		t.Fatalf("capacity %d", p.Capacity())
	}
	const rate = 1e6 // bytes per second
	// A fresh (or long idle) pacer lets a full burst go at once, no more.
	if at := p.TimeUntilSend(t0, rate); !at.Equal(t0) {
		t.Fatalf("first send delayed to %v", at.Sub(t0))
	}
	if got := p.Budget(t0); got != 10*mds {
		t.Fatalf("initial budget %d, want %d", got, 10*mds)
	}
	for range 10 {
		p.OnSend(t0, mds)
	}
	if got := p.Budget(t0); got != 0 {
		t.Fatalf("budget %d after the burst", got)
	}
	// The next packet may go when mds bytes have accrued: 1.2 ms.
	at := p.TimeUntilSend(t0, rate)
	if want := t0.Add(1200 * time.Microsecond); !at.Equal(want) {
		t.Fatalf("next send at %v, want 1.2ms", at.Sub(t0))
	}
	if got := p.Budget(at); got < mds {
		t.Fatalf("budget %d at the promised time", got)
	}
	// After an hour idle the budget is one burst again, not an hour's worth.
	if got := p.Budget(t0.Add(time.Hour)); got != 10*mds {
		t.Fatalf("budget after idle %d", got)
	}
}

func TestPacerHonoursRate(t *testing.T) {
	const rate = 2.5e6 // bytes per second
	for _, size := range []int{mds, 600, 77} {
		p := NewPacer(mds, 0)
		capacity := float64(p.Capacity())
		now := t0
		sent := 0
		x := uint32(1)
		for range 50000 {
			// Wake up at irregular times, as timers do: 0 to ~1 ms late.
			x = x*1664525 + 1013904223
			at := p.TimeUntilSend(now, rate)
			now = maxTime(now, at).Add(time.Duration(x>>22) * time.Microsecond)
			// Send as many packets as the budget allows, as one batch.
			n := p.Budget(now) / size
			for range n {
				p.OnSend(now, size)
				sent += size
			}
			elapsed := now.Sub(t0).Seconds()
			if limit := rate*elapsed + capacity + 1e-3; float64(sent) > limit {
				t.Fatalf("size %d: %d bytes sent after %.3fs, limit %.0f", size, sent, elapsed, limit)
			}
		}
		elapsed := now.Sub(t0).Seconds()
		// The rate is also achieved, within one packet and one burst.
		if float64(sent) < rate*elapsed-capacity-float64(mds) {
			t.Fatalf("size %d: only %d bytes sent in %.3fs at %v B/s", size, sent, elapsed, rate)
		}
	}
}

func TestPacerDebtAndRateChange(t *testing.T) {
	p := NewPacer(mds, 2)
	const rate = 1.2e6 // one packet per ms
	p.SetRate(t0, rate)
	// A 5-packet batch on a 2-packet budget leaves 3 packets of debt.
	for range 5 {
		p.OnSend(t0, mds)
	}
	if at := p.TimeUntilSend(t0, rate); !at.Equal(t0.Add(4 * ms)) {
		t.Fatalf("next send at %v, want 4ms (3 of debt + 1)", at.Sub(t0))
	}
	// Doubling the rate at 2 ms: 2 ms at the old rate repaid 2 packets,
	// the remaining 2 packets take 1 ms at the new one.
	if at := p.TimeUntilSend(t0.Add(2*ms), 2*rate); !at.Equal(t0.Add(3 * ms)) {
		t.Fatalf("next send at %v, want 3ms", at.Sub(t0))
	}
	if p.Rate() != 2*rate {
		t.Fatal("rate not updated")
	}
}

func TestPacerOff(t *testing.T) {
	var p Pacer // zero value: defaults
	if p.Capacity() != DefaultBurstPackets*DefaultMaxDatagramSize {
		t.Fatalf("default capacity %d", p.Capacity())
	}
	if at := p.TimeUntilSend(t0, 0); !at.Equal(t0) || p.Budget(t0) != math.MaxInt {
		t.Fatal("rate 0 must not pace")
	}
	for range 1000 {
		p.OnSend(t0, mds)
	}
	if at := p.TimeUntilSend(t0, math.NaN()); !at.Equal(t0) {
		t.Fatal("NaN rate must not pace")
	}
	// Turning pacing on later starts from a full burst.
	p.SetRate(t0.Add(ms), 1e6)
	if got := p.Budget(t0.Add(ms)); got != p.Capacity() {
		t.Fatalf("budget %d when pacing starts", got)
	}
	p.SetMaxDatagramSize(1000)
	if p.Capacity() != 10000 || p.Budget(t0.Add(ms)) != 10000 {
		t.Fatalf("capacity %d after SetMaxDatagramSize", p.Capacity())
	}
}

func TestPacerTinyRate(t *testing.T) {
	p := NewPacer(mds, 1)
	p.SetRate(t0, 1e-12)
	p.OnSend(t0, mds)
	at := p.TimeUntilSend(t0, 1e-12)
	if !at.After(t0.Add(time.Hour)) {
		t.Fatalf("tiny rate gave %v", at.Sub(t0))
	}
}

// TestPacerRateBurst: a fast sender's allowance is BurstInterval of its
// rate, capped at MaxRateBurst; a slow one keeps the burst packets; with
// the rate burst off (packets larger than the unit) the burst packets are
// the allowance at any rate.
func TestPacerRateBurst(t *testing.T) {
	p := NewPacer(1452, 10)
	p.SetRate(t0, 50e6) // 50 MB/s: 1 ms is 50 kB, more than 10 packets
	if got, want := p.Capacity(), 50_000; got != want {
		t.Fatalf("capacity at 50 MB/s: %d, want %d", got, want)
	}
	p.SetRate(t0, 1e6) // 1 MB/s: 1 ms is 1 kB, less than 10 packets
	if got := p.Capacity(); got != 10*1452 {
		t.Fatalf("capacity at 1 MB/s: %d, want the 10 packets", got)
	}
	p.SetRate(t0, 10e9) // 10 GB/s: capped
	if got := p.Capacity(); got != MaxRateBurst {
		t.Fatalf("capacity at 10 GB/s: %d, want MaxRateBurst %d", got, MaxRateBurst)
	}
	// A fast sender whose run wakes 1 ms after a full burst finds a run's
	// worth of budget, not ten packets.
	p.Budget(t0)
	p.OnSend(t0, p.Budget(t0))
	if got := p.Budget(t0.Add(time.Millisecond)); got != MaxRateBurst {
		t.Fatalf("budget 1 ms after a burst: %d, want %d", got, MaxRateBurst)
	}
	p.SetRateBurst(false)
	if got := p.Capacity(); got != 10*1452 || p.Budget(t0.Add(time.Millisecond)) > 10*1452 {
		t.Fatalf("rate burst off: capacity %d", got)
	}
	p.SetRateBurst(true)
	if got := p.Capacity(); got != MaxRateBurst {
		t.Fatalf("rate burst on again: capacity %d", got)
	}
}

// TestPacerBurstCoversARun: at a high rate, the allowance lets a whole run
// of the endpoint's (88 packets, internal/endpoint's producePackets) go at
// once at the largest IPv4 packet on a 1,500-byte MTU (1,472 bytes):
// sending them all at one instant never asks to wait.
func TestPacerBurstCoversARun(t *testing.T) {
	const runPackets, size = 88, 1472
	p := NewPacer(size, 10)
	p.SetRate(t0, 10e9)
	t1 := t0.Add(time.Millisecond) // the allowance has filled up
	for i := 0; i < runPackets; i++ {
		if at := p.TimeUntilSend(t1, 10e9); at.After(t1) {
			t.Fatalf("packet %d of a run of %d × %d bytes waits %v for the pacer", i, runPackets, size, at.Sub(t1))
		}
		p.OnSend(t1, size)
	}
}
