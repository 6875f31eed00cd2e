package benchmarks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	havennet "github.com/havenproto/haven/net"
	"github.com/quic-go/quic-go"

	"github.com/havenproto/haven/benchmarks/internal/lossproxy"
)

// dgramSize is the datagram payload of the datagram benchmark.
const dgramSize = 1200

// BenchmarkDatagram: one sender sends b.N datagrams of 1,200 bytes as fast
// as its API lets it (both block while their send queue is full) to a
// receiver on loopback. ns/op and MB/s are the sender's pace; recv-MB/s is
// what arrived, per second from the first send to the last arrival, and
// loss-% what did not arrive. TLS over TCP has no datagrams.
func BenchmarkDatagram(b *testing.B) {
	for _, sys := range udpSystems {
		b.Run(sys, func(b *testing.B) {
			p, err := newDatagramPair(sys)
			if err != nil {
				b.Fatal(err)
			}
			defer p.close()
			defer watchdog(b, p.close)()
			payload := startDatagrams(b, p)
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := p.send(payload); err != nil {
					b.Fatalf("send %d: %v", i, err)
				}
			}
			b.StopTimer()
			got, last := p.rx.settle(100*time.Millisecond, 3*time.Second)
			b.ReportMetric(100*(1-float64(got)/float64(b.N)), "loss-%")
			if got > 0 {
				b.ReportMetric(float64(got*dgramSize)/last.Sub(start).Seconds()/1e6, "recv-MB/s")
			} else {
				b.ReportMetric(0, "recv-MB/s")
			}
		})
	}
}

// startDatagrams warms p up and starts b's timer, and returns a payload
// of the phase it counts.
func startDatagrams(b *testing.B, p *datagramPair) []byte {
	b.Helper()
	if err := p.warmUp(10 * time.Second); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, dgramSize)
	binary.BigEndian.PutUint32(payload, p.rx.nextPhase())
	b.SetBytes(dgramSize)
	b.ReportAllocs()
	b.ResetTimer()
	return payload
}

// datagramPair is a sender and a receiver of datagrams, connected.
type datagramPair struct {
	send  func([]byte) error
	close func()
	rx    dgCounter
	// repairs, for Haven, counts the FEC repair symbols sent (nil: none).
	repairs func() uint64
}

// dgCounter counts the datagrams of the current phase (the first 4 bytes
// of a payload), so that late warm-up datagrams do not count.
type dgCounter struct {
	phase atomic.Uint32
	count atomic.Uint64
	last  atomic.Int64 // time of the last counted arrival, Unix ns
}

func (c *dgCounter) seen(p []byte) {
	if len(p) == dgramSize && binary.BigEndian.Uint32(p) == c.phase.Load() {
		c.count.Add(1)
		c.last.Store(time.Now().UnixNano())
	}
}

// nextPhase starts counting afresh and returns the new phase's tag.
func (c *dgCounter) nextPhase() uint32 {
	tag := c.phase.Add(1)
	c.count.Store(0)
	return tag
}

// settle waits until nothing has arrived for quiet (at most limit), and
// returns the count and the time of the last arrival.
func (c *dgCounter) settle(quiet, limit time.Duration) (uint64, time.Time) {
	end := time.Now().Add(limit)
	prev := c.count.Load()
	for time.Now().Before(end) {
		time.Sleep(quiet)
		n := c.count.Load()
		if n == prev {
			break
		}
		prev = n
	}
	return c.count.Load(), time.Unix(0, c.last.Load())
}

// warmUp sends a datagram every 5 ms until one arrives: the session (or
// connection) is set up and the path works.
func (p *datagramPair) warmUp(limit time.Duration) error {
	payload := make([]byte, dgramSize)
	binary.BigEndian.PutUint32(payload, p.rx.nextPhase())
	end := time.Now().Add(limit)
	for p.rx.count.Load() == 0 {
		if time.Now().After(end) {
			return fmt.Errorf("no datagram arrived within %v", limit)
		}
		if err := p.send(payload); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func newDatagramPair(sys string) (*datagramPair, error) {
	switch sys {
	case sysHaven:
		return havenDatagrams()
	case sysQUIC:
		return quicDatagrams()
	}
	return nil, errors.New(sys + " has no datagrams")
}

// havenDatagrams: two PacketConns; the first WriteTo makes the session.
func havenDatagrams() (*datagramPair, error) { return havenDatagramsVia(0, havennet.FEC{}) }

// havenDatagramsVia is havenDatagrams with the sender's datagrams going
// through a loss proxy dropping loss of them (none at 0), and fec on both
// PacketConns; repairs then counts the repair symbols sent.
func havenDatagramsVia(loss float64, fec havennet.FEC) (*datagramPair, error) {
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
	to := net.Addr(server)
	var px *lossproxy.Proxy
	if loss > 0 {
		if px, err = lossproxy.New(server.Addr, loss, 2026); err != nil {
			a.Close()
			r.Close()
			return nil, err
		}
		to = &havennet.Addr{Key: server.Key, Addr: px.Addr()}
	}
	p := &datagramPair{}
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
			if px != nil {
				px.Close()
			}
			<-done
		})
	}
	return p, nil
}

// quicDatagrams: a connection with RFC 9221 datagrams on both ends; the
// server receives.
func quicDatagrams() (*datagramPair, error) { return quicDatagramsVia(0) }

// quicDatagramsVia is quicDatagrams through a loss proxy dropping loss of
// the packets each way (none at 0).
func quicDatagramsVia(loss float64) (*datagramPair, error) {
	conf := quicConfig(options{datagrams: true})
	ln, err := quic.ListenAddr("127.0.0.1:0", serverTLS(), conf)
	if err != nil {
		return nil, err
	}
	at := ln.Addr().(*net.UDPAddr).AddrPort()
	var px *lossproxy.Proxy
	if loss > 0 {
		if px, err = lossproxy.New(at, loss, 2026); err != nil {
			ln.Close()
			return nil, err
		}
		at = px.Addr()
	}
	p := &datagramPair{}
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
	conn, err := quic.DialAddr(ctx, net.UDPAddrFromAddrPort(at).String(), clientTLS(nil), conf)
	if err != nil {
		if px != nil {
			px.Close()
		}
		ln.Close()
		return nil, err
	}
	p.send = conn.SendDatagram
	var once sync.Once
	p.close = func() {
		once.Do(func() {
			conn.CloseWithError(0, "")
			ln.Close()
			if px != nil {
				px.Close()
			}
			<-done
		})
	}
	return p, nil
}
