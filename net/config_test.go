package net

import "testing"

// TestStreamCongestionFollowsConfig: the TCP fallback's connections ask
// the kernel for the congestion control of the session's own
// (Config.Congestion), on the listening and on the dialing side
// (docs/PROTOCOL.md §8.1; compat's TestStreamCongestion checks that the
// sockets get it).
func TestStreamCongestionFollowsConfig(t *testing.T) {
	for _, c := range []struct {
		cc   Congestion
		want string
	}{{CongestionCUBIC, "cubic"}, {CongestionBBR, "bbr"}} {
		cfg := Config{Congestion: c.cc}
		if got := cfg.streamConfig().Congestion; got != c.want {
			t.Errorf("%v: listener's connections ask for %q, want %q", c.cc, got, c.want)
		}
		if got := cfg.endpoint(false).StreamCongestion; got != c.want {
			t.Errorf("%v: dialer's connections ask for %q, want %q", c.cc, got, c.want)
		}
	}
}
