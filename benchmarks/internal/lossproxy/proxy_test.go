package lossproxy

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestRelay: datagrams go through both ways, and about the configured
// fraction is dropped.
func TestRelay(t *testing.T) {
	echo, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	p, err := New(echo.LocalAddr().(*net.UDPAddr).AddrPort(), 0.2, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(p.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 1000
	got := make(chan int)
	go func() {
		buf := make([]byte, 2048)
		n := 0
		for {
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			k, err := c.Read(buf)
			if err != nil {
				got <- n
				return
			}
			if string(buf[:k]) != "ping" {
				t.Errorf("relayed %q", buf[:k])
			}
			n++
		}
	}()
	for i := 0; i < sent; i++ {
		c.Write([]byte("ping"))
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // stay within the socket buffers
		}
	}
	n := <-got
	// Two independent 20 % drops: about 64 % come back.
	if n < sent*50/100 || n > sent*78/100 {
		t.Fatalf("%d of %d echoed through 20%% loss each way", n, sent)
	}
	if fwd, drop := p.Stats(); drop == 0 || fwd == 0 {
		t.Fatalf("stats: %d forwarded, %d dropped", fwd, drop)
	}
}
