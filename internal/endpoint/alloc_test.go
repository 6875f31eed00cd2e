package endpoint

import (
	"io"
	"runtime"
	"testing"
)

// TestBulkAllocs: a bulk transfer between two endpoints over real loopback
// sockets, both ends in this process, allocates next to nothing per packet
// once warm (reader copies go through the endpoint's pool, sealing reuses
// session buffers, GSO buffers come from the shared pool). The count is
// process-wide, so it includes both ends and every goroutine.
func TestBulkAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector; the non-race pass runs this")
	}
	server, client := newPair(t)
	svc, _ := server.Listen("")
	go func() {
		st, err := svc.Accept(ctx(t))
		if err != nil {
			return
		}
		io.Copy(io.Discard, st)
		st.Close()
	}()
	s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.OpenStream("", 3)
	defer st.Close()
	chunk := make([]byte, 64<<10)
	for i := 0; i < 64; i++ { // warm up: windows, rings and pools reach their size
		if _, err := st.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	p0 := s.Stats().PacketsSent
	for i := 0; i < 512; i++ {
		if _, err := st.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&m1)
	packets := s.Stats().PacketsSent - p0
	perPacket := float64(m1.Mallocs-m0.Mallocs) / float64(packets)
	t.Logf("%d packets, %d allocations (%.4f per packet), %d bytes", packets, m1.Mallocs-m0.Mallocs, perPacket, m1.TotalAlloc-m0.TotalAlloc)
	if packets < 10000 {
		t.Fatalf("only %d packets sent for 32 MiB", packets)
	}
	if perPacket > 0.02 {
		t.Fatalf("%.4f allocations per packet in steady state, want almost none", perPacket)
	}
}
