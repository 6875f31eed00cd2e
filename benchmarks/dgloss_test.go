package benchmarks

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	havennet "github.com/havenproto/haven/net"
	"github.com/quic-go/quic-go"

	"github.com/havenproto/haven/benchmarks/internal/lossproxy"
)

// Datagram delivery under loss: dgLossRate of the packets is dropped each
// way; datagrams go at dgLossPace, a media stream's pace (1,200 bytes,
// 2,000 a second: 19 Mbit/s), well below what the path carries, so that
// only the loss decides what arrives.
const (
	dgLossRate = 0.05
	dgLossPace = 500 * time.Microsecond
)

// BenchmarkDatagramLoss: b.N datagrams of 1,200 bytes at a media pace
// through a proxy that drops 5 % of the packets each way (fixed seed).
// delivered-% is what arrived. Haven protects the channel with forward
// error correction, Config.DatagramFEC{Group: 64, Repairs: 8}
// (docs/PROTOCOL.md §5.11), and reports its repair overhead (repair-%,
// repair symbols per datagram); HavenPlain is Haven without it; quic-go
// has no FEC (RFC 9221 datagrams are lost with their packets). Issue #15
// asks for 99.5 % or more with one repair per 8 datagrams.
func BenchmarkDatagramLoss(b *testing.B) {
	for _, sys := range []string{sysHaven, "HavenPlain", sysQUIC} {
		b.Run(sys, func(b *testing.B) {
			p, err := newLossyDatagramPair(sys)
			if err != nil {
				b.Fatal(err)
			}
			defer p.close()
			defer watchdog(b, p.close)()
			if err := p.warmUp(10 * time.Second); err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, dgramSize)
			binary.BigEndian.PutUint32(payload, p.rx.nextPhase())
			b.SetBytes(dgramSize)
			b.ReportAllocs()
			b.ResetTimer()
			next := time.Now()
			for i := 0; i < b.N; i++ {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(dgLossPace)
				if err := p.send(payload); err != nil {
					b.Fatalf("send %d: %v", i, err)
				}
			}
			b.StopTimer()
			got, _ := p.rx.settle(200*time.Millisecond, 5*time.Second)
			b.ReportMetric(100*float64(got)/float64(b.N), "delivered-%")
			if p.repairs != nil {
				b.ReportMetric(100*float64(p.repairs())/float64(b.N), "repair-%")
			}
		})
	}
}

// lossyDatagramPair is a datagramPair through the loss proxy; repairs,
// for Haven, counts the repair symbols sent.
type lossyDatagramPair struct {
	datagramPair
	repairs func() uint64
}

func newLossyDatagramPair(sys string) (*lossyDatagramPair, error) {
	switch sys {
	case sysHaven:
		return havenLossyDatagrams(havennet.FEC{Group: 64, Repairs: 8})
	case "HavenPlain":
		return havenLossyDatagrams(havennet.FEC{})
	}
	return quicLossyDatagrams()
}

// havenLossyDatagrams: two PacketConns, the sender's datagrams going
// through the loss proxy.
func havenLossyDatagrams(fec havennet.FEC) (*lossyDatagramPair, error) {
	lc := havennet.ListenConfig{Config: havennet.Config{DatagramFEC: fec}}
	a, err := lc.ListenPacket(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r, err := lc.ListenPacket(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		a.Close()
		return nil, err
	}
	server := r.LocalAddr().(*havennet.Addr)
	px, err := lossproxy.New(server.Addr, dgLossRate, 2026)
	if err != nil {
		a.Close()
		r.Close()
		return nil, err
	}
	to := &havennet.Addr{Key: server.Key, Addr: px.Addr()}
	p := &lossyDatagramPair{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, _, err := r.ReadFrom(buf)
			if err != nil {
				return
			}
			p.rx.seen(buf[:n])
		}
	}()
	p.send = func(b []byte) error { _, err := a.WriteTo(b, to); return err }
	p.repairs = func() uint64 { return a.(*havennet.PacketConn).Stats().Repairs }
	var once sync.Once
	p.close = func() {
		once.Do(func() {
			a.Close()
			r.Close()
			px.Close()
			<-done
		})
	}
	return p, nil
}

// quicLossyDatagrams: an RFC 9221 datagram connection through the loss
// proxy; the server receives.
func quicLossyDatagrams() (*lossyDatagramPair, error) {
	conf := quicConfig(options{datagrams: true})
	ln, err := quic.ListenAddr("127.0.0.1:0", serverTLS(), conf)
	if err != nil {
		return nil, err
	}
	px, err := lossproxy.New(netip.MustParseAddrPort(ln.Addr().String()), dgLossRate, 2026)
	if err != nil {
		ln.Close()
		return nil, err
	}
	p := &lossyDatagramPair{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		for {
			d, err := conn.ReceiveDatagram(context.Background())
			if err != nil {
				return
			}
			p.rx.seen(d)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn, err := quic.DialAddr(ctx, net.UDPAddrFromAddrPort(px.Addr()).String(), clientTLS(nil), conf)
	if err != nil {
		px.Close()
		ln.Close()
		return nil, err
	}
	p.send = conn.SendDatagram
	var once sync.Once
	p.close = func() {
		once.Do(func() {
			conn.CloseWithError(0, "")
			ln.Close()
			px.Close()
			<-done
		})
	}
	return p, nil
}

// TestDatagramLossSmoke runs BenchmarkDatagramLoss's Haven setup once, so
// that CI keeps it working: datagrams arrive through the lossy proxy and
// repair symbols go with them.
func TestDatagramLossSmoke(t *testing.T) {
	p, err := newLossyDatagramPair(sysHaven)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if err := p.warmUp(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, dgramSize)
	binary.BigEndian.PutUint32(payload, p.rx.nextPhase())
	for i := 0; i < 256; i++ {
		if err := p.send(payload); err != nil {
			t.Fatal(err)
		}
		time.Sleep(dgLossPace)
	}
	got, _ := p.rx.settle(200*time.Millisecond, 5*time.Second)
	if got == 0 || p.repairs() == 0 {
		t.Fatalf("%d datagrams arrived, %d repair symbols sent", got, p.repairs())
	}
}
