// Package lossproxy is a small user-space UDP relay that drops a fixed
// fraction of datagrams in each direction, for benchmarks on loopback where
// netem is not available. Drops are drawn from seeded generators, so a run
// sees the same loss pattern for the same packet sequence.
//
// Each client address gets its own upstream socket, so the target sees one
// source address per client, as it would through a NAT.
package lossproxy

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// sockBuf is the socket buffer size asked for on every socket of the proxy
// (capped by net.core.rmem_max/wmem_max), so that the relay itself drops
// as little as possible.
const sockBuf = 4 << 20

// Proxy relays datagrams between clients and one target.
type Proxy struct {
	front  *net.UDPConn
	target netip.AddrPort
	loss   float64
	seed   uint64

	mu     sync.Mutex // guards flows and closed
	flows  map[netip.AddrPort]*net.UDPConn
	closed bool

	wg                 sync.WaitGroup
	forwarded, dropped atomic.Uint64
}

// New listens on 127.0.0.1 (a free port) and relays to target, dropping
// each datagram with probability loss (0 ≤ loss < 1) in both directions.
func New(target netip.AddrPort, loss float64, seed uint64) (*Proxy, error) {
	if loss < 0 || loss >= 1 {
		return nil, errors.New("lossproxy: loss must be in [0, 1)")
	}
	front, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil, err
	}
	front.SetReadBuffer(sockBuf)
	front.SetWriteBuffer(sockBuf)
	p := &Proxy{front: front, target: target, loss: loss, seed: seed, flows: map[netip.AddrPort]*net.UDPConn{}}
	p.wg.Add(1)
	go p.fromClients()
	return p, nil
}

// Addr is the address clients send to.
func (p *Proxy) Addr() netip.AddrPort { return p.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// Stats returns how many datagrams were relayed and how many dropped.
func (p *Proxy) Stats() (forwarded, dropped uint64) { return p.forwarded.Load(), p.dropped.Load() }

// Close stops the relay and waits for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ups := make([]*net.UDPConn, 0, len(p.flows))
	for _, up := range p.flows {
		ups = append(ups, up)
	}
	p.mu.Unlock()
	err := p.front.Close()
	for _, up := range ups {
		up.Close()
	}
	p.wg.Wait()
	return err
}

// keep draws whether the next datagram survives.
func (p *Proxy) keep(rng *rand.Rand) bool {
	if p.loss > 0 && rng.Float64() < p.loss {
		p.dropped.Add(1)
		return false
	}
	p.forwarded.Add(1)
	return true
}

// fromClients reads the client-facing socket and forwards each datagram
// through its client's upstream socket, creating it on first sight.
func (p *Proxy) fromClients() {
	defer p.wg.Done()
	rng := rand.New(rand.NewPCG(p.seed, 1))
	buf := make([]byte, 64<<10)
	for {
		n, client, err := p.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		up, err := p.upstream(client)
		if err != nil {
			return
		}
		if up == nil || !p.keep(rng) {
			continue
		}
		up.Write(buf[:n])
	}
}

// upstream returns client's upstream socket, creating it (and the
// goroutine relaying its replies) on first use; nil after Close.
func (p *Proxy) upstream(client netip.AddrPort) (*net.UDPConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, net.ErrClosed
	}
	if up := p.flows[client]; up != nil {
		return up, nil
	}
	up, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(p.target))
	if err != nil {
		return nil, nil // this datagram is lost; the next one tries again
	}
	up.SetReadBuffer(sockBuf)
	up.SetWriteBuffer(sockBuf)
	p.flows[client] = up
	p.wg.Add(1)
	go p.toClient(up, client, uint64(len(p.flows)))
	return up, nil
}

// toClient relays the target's replies on up back to client.
func (p *Proxy) toClient(up *net.UDPConn, client netip.AddrPort, stream uint64) {
	defer p.wg.Done()
	rng := rand.New(rand.NewPCG(p.seed, 1+stream))
	buf := make([]byte, 64<<10)
	for {
		n, err := up.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if p.keep(rng) {
			p.front.WriteToUDPAddrPort(buf[:n], client)
		}
	}
}
