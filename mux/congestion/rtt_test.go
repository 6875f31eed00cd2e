package congestion

import (
	"testing"
	"time"
)

const ms = time.Millisecond

func TestRTTBeforeFirstSample(t *testing.T) {
	var r RTTStats
	if r.HasSample() || r.Latest() != 0 || r.Min() != 0 {
		t.Fatalf("zero RTTStats: HasSample=%v Latest=%v Min=%v", r.HasSample(), r.Latest(), r.Min())
	}
	if r.Smoothed() != 333*ms || r.Var() != 333*ms/2 {
		t.Fatalf("initial smoothed/var = %v/%v, want 333ms/166.5ms", r.Smoothed(), r.Var())
	}
	// RFC 9002 §6.2.2: 333 + 4×166.5 = 999 ms, plus max_ack_delay.
	if got := r.PTO(25 * ms); got != 1024*ms {
		t.Fatalf("initial PTO(25ms) = %v, want 1.024s", got)
	}
	if got := r.MaxAckDelay(); got != DefaultMaxAckDelay {
		t.Fatalf("default max_ack_delay = %v", got)
	}
	r2 := NewRTTStats(100 * ms)
	if r2.Smoothed() != 100*ms || r2.Var() != 50*ms || r2.PTO(0) != 300*ms {
		t.Fatalf("NewRTTStats(100ms): smoothed %v var %v pto %v", r2.Smoothed(), r2.Var(), r2.PTO(0))
	}
	if r3 := NewRTTStats(-1); r3.InitialRTT() != DefaultInitialRTT {
		t.Fatal("non-positive initial RTT is not the default")
	}
}

func TestRTTFirstSample(t *testing.T) {
	var r RTTStats
	// The first sample ignores the ACK delay (RFC 9002 §5.3).
	r.Update(100*ms, 10*ms, true)
	if !r.HasSample() || r.Latest() != 100*ms || r.Min() != 100*ms || r.Smoothed() != 100*ms || r.Var() != 50*ms {
		t.Fatalf("after first sample: latest %v min %v smoothed %v var %v", r.Latest(), r.Min(), r.Smoothed(), r.Var())
	}
	// PTO = 100 + max(4×50, 1) + 25 = 325 ms.
	if got := r.PTO(25 * ms); got != 325*ms {
		t.Fatalf("PTO = %v, want 325ms", got)
	}
	if r.SetInitialRTT(time.Second); r.Smoothed() != 100*ms {
		t.Fatal("SetInitialRTT changed the estimate after a sample")
	}
}

func TestRTTSubsequentSamples(t *testing.T) {
	var r RTTStats
	r.SetMaxAckDelay(25 * ms)
	r.Update(100*ms, 0, true)
	// latest 120, ack delay 10 ≤ max_ack_delay; 120 ≥ 100+10 so adjusted = 110.
	// rttvar = 3/4×50 + 1/4×|100−110| = 40; smoothed = 7/8×100 + 1/8×110 = 101.25.
	r.Update(120*ms, 10*ms, true)
	if r.Latest() != 120*ms || r.Min() != 100*ms {
		t.Fatalf("latest %v min %v", r.Latest(), r.Min())
	}
	if r.Var() != 40*ms || r.Smoothed() != 101250*time.Microsecond {
		t.Fatalf("var %v smoothed %v, want 40ms 101.25ms", r.Var(), r.Smoothed())
	}
	// A lower sample lowers min_rtt, raw (the ACK delay plays no part).
	// latest 80, ack delay 20: 80 < 80+20, so adjusted = 80 (no subtraction).
	// rttvar = 3/4×40 + 1/4×21.25 = 35.3125; smoothed = 7/8×101.25 + 1/8×80 = 98.59375.
	r.Update(80*ms, 20*ms, true)
	if r.Min() != 80*ms {
		t.Fatalf("min %v, want 80ms", r.Min())
	}
	if r.Var() != 35312500*time.Nanosecond || r.Smoothed() != 98593750*time.Nanosecond {
		t.Fatalf("var %v smoothed %v", r.Var(), r.Smoothed())
	}
	// PTO = 98.59375 + 4×35.3125 + 25 = 264.84375 ms.
	if got := r.PTO(25 * ms); got != 264843750*time.Nanosecond {
		t.Fatalf("PTO = %v", got)
	}
	if got := r.PersistentCongestionDuration(25 * ms); got != 3*264843750*time.Nanosecond {
		t.Fatalf("persistent congestion duration = %v", got)
	}
	// Loss delay: 9/8 × max(98.59375, 80) = 110.91796875 ms.
	if got := r.LossDelay(); got != 110917968*time.Nanosecond {
		t.Fatalf("loss delay = %v", got)
	}
}

func TestRTTAckDelayCap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		confirmed bool
		want      time.Duration // smoothed after the second sample
	}{
		// Confirmed: ack delay 50 is capped at max_ack_delay 25; adjusted 175.
		// smoothed = 7/8×100 + 1/8×175 = 109.375.
		{"confirmed", true, 109375 * time.Microsecond},
		// Not confirmed: the whole 50 ms is subtracted; adjusted 150.
		// smoothed = 7/8×100 + 1/8×150 = 106.25.
		{"unconfirmed", false, 106250 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r RTTStats
			r.SetMaxAckDelay(25 * ms)
			r.Update(100*ms, 0, tc.confirmed)
			r.Update(200*ms, 50*ms, tc.confirmed)
			if r.Smoothed() != tc.want {
				t.Fatalf("smoothed %v, want %v", r.Smoothed(), tc.want)
			}
			if r.Latest() != 200*ms || r.Min() != 100*ms {
				t.Fatalf("latest %v min %v", r.Latest(), r.Min())
			}
		})
	}
}

func TestRTTAckDelayNotBelowMin(t *testing.T) {
	var r RTTStats
	r.Update(100*ms, 0, true)
	// 105 < 100+10: subtracting would go below min_rtt, so the sample is used raw.
	r.Update(105*ms, 10*ms, true)
	// smoothed = 7/8×100 + 1/8×105 = 100.625
	if r.Smoothed() != 100625*time.Microsecond {
		t.Fatalf("smoothed %v", r.Smoothed())
	}
}

func TestRTTGranularityAndPersistentCongestion(t *testing.T) {
	var r RTTStats
	for range 100 {
		r.Update(10*ms, 0, true)
	}
	if r.Var() >= 250*time.Microsecond {
		t.Fatalf("rttvar did not decay: %v", r.Var())
	}
	// 4×rttvar < 1 ms, so kGranularity applies.
	if got := r.PTO(0); got != 11*ms {
		t.Fatalf("PTO = %v, want 11ms", got)
	}
	r.Update(30*ms, 0, true)
	r.OnPersistentCongestion()
	if r.Min() != 30*ms {
		t.Fatalf("min after persistent congestion = %v, want latest 30ms", r.Min())
	}
	r.Update(-5*ms, 0, true) // a clock error: ignored
	if r.Latest() != 30*ms {
		t.Fatalf("negative sample was taken")
	}
}
