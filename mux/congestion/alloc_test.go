package congestion

import (
	"testing"
	"time"
)

// TestNoAllocations: the per-packet and per-ACK paths allocate nothing.
func TestNoAllocations(t *testing.T) {
	var cc Controller = newTestCubic(CubicConfig{})
	r := fixedRTT(50 * ms)
	p := NewPacer(mds, 0)
	now := t0
	check := func(name string, f func()) {
		t.Helper()
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
	check("OnPacketSent", func() {
		now = now.Add(time.Microsecond)
		cc.OnPacketSent(now, mds, cc.Window())
	})
	check("OnAck slow start", func() {
		now = now.Add(time.Microsecond)
		cc.OnAck(now, mds, now.Add(-50*ms), r, cc.Window())
	})
	check("OnCongestionEvent", func() {
		now = now.Add(time.Millisecond)
		cc.OnCongestionEvent(now, now.Add(-1), mds, cc.Window())
		cc.OnSpuriousCongestion(now)
	})
	cc.OnCongestionEvent(now, now, mds, cc.Window())
	check("OnAck congestion avoidance", func() {
		now = now.Add(time.Microsecond)
		cc.OnAck(now, mds, now.Add(-50*ms), r, cc.Window())
	})
	check("CanSend/Window/PacingRate/InRecovery", func() {
		_ = cc.CanSend(mds)
		_ = cc.Window()
		_ = cc.PacingRate(r)
		_ = cc.InRecovery(now)
		_ = cc.InSlowStart()
	})
	check("OnPersistentCongestion/SetMaxDatagramSize", func() {
		cc.OnPersistentCongestion(now)
		cc.SetMaxDatagramSize(1300)
		cc.SetMaxDatagramSize(mds)
	})
	check("RTTStats", func() {
		r.Update(51*ms, ms, true)
		_ = r.PTO(25 * ms)
		_ = r.LossDelay()
	})
	check("Pacer", func() {
		now = now.Add(time.Microsecond)
		at := p.TimeUntilSend(now, 1e7)
		_ = p.Budget(at)
		p.OnSend(at, mds)
	})
}

func BenchmarkCubicOnAck(b *testing.B) {
	b.Run("SlowStart", func(b *testing.B) {
		c := newTestCubic(CubicConfig{MaxWindow: 1 << 40})
		r := fixedRTT(50 * ms)
		now := t0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			c.OnPacketSent(now, mds, c.Window())
			c.OnAck(now, mds, now.Add(-50*ms), r, c.Window())
		}
	})
	b.Run("CongestionAvoidance", func(b *testing.B) {
		c := newTestCubic(CubicConfig{InitialWindowPackets: 1000})
		c.OnCongestionEvent(t0, t0, mds, c.Window())
		r := fixedRTT(50 * ms)
		now := t0.Add(time.Second)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			now = now.Add(time.Microsecond)
			c.OnPacketSent(now, mds, c.Window())
			c.OnAck(now, mds, now.Add(-50*ms), r, c.Window())
			if i%100000 == 99999 { // keep the window in a realistic range
				c.OnCongestionEvent(now, now, mds, c.Window())
			}
		}
	})
}

func BenchmarkPacer(b *testing.B) {
	p := NewPacer(mds, 0)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if !p.TimeUntilSend(now, 1e9).After(now) {
			p.OnSend(now, mds)
		}
	}
}
