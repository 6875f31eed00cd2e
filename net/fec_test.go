package net

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/udpproxy"
)

// TestPacketConnFEC: two PacketConns with Config.DatagramFEC (Reed–Solomon,
// 8 repair symbols per 64 datagrams) exchange 3,000 datagrams through a
// proxy that drops 5 % of the packets each way. Lost datagrams are
// recovered (PROTOCOL.md §5.11): at least 99 % of those sent arrive, each
// whole and once, where plain datagrams lose about 5 %.
func TestPacketConnFEC(t *testing.T) {
	const total, size = 3000, 1000
	lc := ListenConfig{Config: Config{DatagramFEC: FEC{Group: 64, Repairs: 8}}}
	srv, err := lc.ListenPacket(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := lc.ListenPacket(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	server := srv.LocalAddr().(*Addr)
	px, err := udpproxy.New(netip.AddrPortFrom(server.Addr.Addr(), 0), server.Addr, udpproxy.Config{Loss: 0.05, Seed: 21})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	to, err := ResolveAddr("haven4", (&Addr{Key: server.Key, Addr: px.Addr()}).String())
	if err != nil {
		t.Fatal(err)
	}

	got := make(map[int]bool)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			srv.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, _, err := srv.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
			i := int(binary.LittleEndian.Uint32(buf))
			if n != size || i >= total || got[i] || buf[n-1] != byte(i) {
				done <- errors.New("a datagram arrived corrupted or twice")
				return
			}
			got[i] = true
		}
	}()
	p := make([]byte, size)
	for i := 0; i < total; i++ {
		binary.LittleEndian.PutUint32(p, uint32(i))
		p[size-1] = byte(i)
		if _, err := cli.WriteTo(p, to); err != nil {
			t.Fatal(err)
		}
		if i%64 == 63 {
			time.Sleep(2 * time.Millisecond) // well within the receiver's pace
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := cli.(*PacketConn).Stats()
	rst := srv.(*PacketConn).Stats()
	sent := total - int(st.Unsent)
	t.Logf("%d of %d datagrams sent arrived (%d unsent for want of credit), %d recovered, %d repair symbols; proxy %+v",
		len(got), sent, st.Unsent, rst.Recovered, st.Repairs, px.Stats().ToTarget)
	if px.Stats().ToTarget.Lost < 50 {
		t.Fatal("the proxy lost almost nothing: the test proves nothing")
	}
	if rst.Recovered == 0 || len(got) < sent*99/100 {
		t.Fatalf("%d of %d datagrams arrived, %d recovered: want 99 %% with FEC", len(got), sent, rst.Recovered)
	}
}
