package net

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"
)

// TestPacketConnSlowReader: WriteTo as fast as it returns, ReadFrom by an
// application that keeps falling behind, over loopback, with no deadline
// (a WriteTo that waited for the reader would hang the test). Every
// datagram is accounted for: read whole, or dropped by the sender for want
// of credit and counted (PacketStats.Unsent), never lost uncounted; the
// receiver drops none. ReadFrom allocates (next to) nothing, the peer's
// *Addr included (it is shared between calls, and stays equal to the
// sender's address).
func TestPacketConnSlowReader(t *testing.T) {
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
	senderDone := false
	var st PacketStats
	for i := 0; ; i++ {
		if !senderDone {
			select {
			case err := <-errc:
				if err != nil {
					t.Fatal(err)
				}
				senderDone = true
			default:
			}
		}
		if senderDone {
			if st = a.(*PacketConn).Stats(); uint64(n)+st.Unsent >= total {
				break
			}
		}
		if i == 2000 {
			runtime.ReadMemStats(&m0)
		}
		if i%1000 == 999 {
			time.Sleep(3 * time.Millisecond) // the application falls behind
		}
		if i%1000 == 0 { // a deadline timer allocates: not once per read
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
		}
		k, from, err := b.ReadFrom(buf)
		if err != nil {
			break // nothing for a while: the rest is lost (which fails below)
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
	if !senderDone {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		st = a.(*PacketConn).Stats()
	}
	rst := b.(*PacketConn).Stats()
	t.Logf("%d of %d datagrams read; sender %+v; receiver %+v", n, total, st, rst)
	if rst.Dropped != 0 {
		t.Fatalf("the receiver dropped %d datagrams: the sender overran it", rst.Dropped)
	}
	if uint64(n)+st.Unsent != total {
		t.Fatalf("%d read + %d unsent != %d written: datagrams lost uncounted", n, st.Unsent, total)
	}
	if !raceEnabled && n > 2000 {
		per := float64(m1.Mallocs-m0.Mallocs) / float64(n-2000)
		t.Logf("%.4f allocations per datagram (process-wide)", per)
		if per > 0.05 {
			t.Fatalf("%.4f allocations per datagram, both ends, want almost none", per)
		}
	}
}
