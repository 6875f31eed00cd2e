package net

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"
)

// TestPacketConnBackPressure: WriteTo as fast as it returns, ReadFrom by an
// application that keeps falling behind, over loopback: the receiver's
// datagram credit holds the sender back, so (next to) nothing is lost, and
// ReadFrom allocates (next to) nothing, the peer's *Addr included (it is
// shared between calls, and stays equal to the sender's address).
func TestPacketConnBackPressure(t *testing.T) {
	a, b := packetPair(t)
	const total = 20_000
	errc := make(chan error, 1)
	go func() {
		p := make([]byte, 1200)
		for i := 0; i < total; i++ {
			binary.LittleEndian.PutUint32(p, uint32(i))
			if _, err := a.WriteTo(p, b.LocalAddr()); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	buf := make([]byte, 2048)
	seen := make([]bool, total)
	n := 0
	var m0, m1 runtime.MemStats
	var first *Addr
	for i := 0; n < total; i++ {
		if i == 2000 {
			runtime.ReadMemStats(&m0)
		}
		if i%1000 == 999 {
			time.Sleep(3 * time.Millisecond) // the application falls behind
		}
		if i%1000 == 0 { // a deadline timer allocates: not once per read
			b.SetReadDeadline(time.Now().Add(2 * time.Second))
		}
		k, from, err := b.ReadFrom(buf)
		if err != nil {
			break // nothing for a while: the sender is done
		}
		fa, ok := from.(*Addr)
		if !ok || fa.Key != a.LocalAddr().(*Addr).Key || k != 1200 {
			t.Fatalf("read %d bytes from %v", k, from)
		}
		if first == nil {
			first = fa
		}
		idx := binary.LittleEndian.Uint32(buf)
		if idx >= total || seen[idx] {
			t.Fatalf("datagram %d out of range or twice", idx)
		}
		seen[idx] = true
		n++
	}
	runtime.ReadMemStats(&m1)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d datagrams arrived", n, total)
	if n < total*99/100 {
		t.Fatalf("%d of %d datagrams arrived: %.1f%% lost", n, total, 100-100*float64(n)/total)
	}
	if !raceEnabled && n > 2000 {
		per := float64(m1.Mallocs-m0.Mallocs) / float64(n-2000)
		t.Logf("%.4f allocations per datagram (process-wide)", per)
		if per > 0.05 {
			t.Fatalf("%.4f allocations per datagram, both ends, want almost none", per)
		}
	}
}
