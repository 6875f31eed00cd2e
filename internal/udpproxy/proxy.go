package udpproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy relays datagrams between clients and one target, impairing them.
// Its methods are safe for concurrent use.
type Proxy struct {
	target netip.AddrPort // normalized: IPv4 never in 4in6 form
	addr   netip.AddrPort
	client *net.UDPConn // client-facing socket

	mu       sync.Mutex
	cfg      Config // defaults applied
	rng      [2]*rand.Rand
	sessions map[netip.AddrPort]*session
	useClock uint64 // stamps session use, for LRU eviction
	queue    queue
	seq      uint64
	// nextRotate is when the scheduler next rotates ports; zero when
	// rotation is off.
	nextRotate time.Time
	// blackoutUntil is the end of the current blackout (Blackout); zero
	// or past when there is none.
	blackoutUntil time.Time
	// cut holds the client IP addresses BlockClient cut off (nil: none).
	cut map[netip.Addr]bool
	// wireFree is, per direction, when the virtual wire of Config.Rate is
	// free again.
	wireFree [2]time.Time
	closed   bool

	stats     [2]counters
	rotations atomic.Uint64

	wake      chan struct{} // capacity 1: nudges the scheduler
	done      chan struct{} // closed by Close
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// session is one client address and its upstream sockets. Its mutable
// fields are guarded by Proxy.mu.
type session struct {
	client  netip.AddrPort
	up      *net.UDPConn // current upstream socket
	retired []retired    // replaced sockets in their grace period, oldest first
	lastUse uint64
	gone    bool // evicted or proxy closed: sockets are (being) closed
}

// retired is a replaced upstream socket and when to close it.
type retired struct {
	conn  *net.UDPConn
	until time.Time
}

// New starts a proxy that listens on listen (for example 127.0.0.1:0) and
// forwards every datagram it receives to target, from a per-client upstream
// socket; the target's replies to that socket go back to the client.
// Upstream sockets are bound to the loopback address of the target's
// family when the target is on loopback, else to the unspecified address.
func New(listen, target netip.AddrPort, cfg Config) (*Proxy, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("udpproxy: %w", err)
	}
	if !listen.IsValid() || !target.IsValid() || target.Port() == 0 {
		return nil, fmt.Errorf("udpproxy: invalid address (listen %v, target %v)", listen, target)
	}
	target = netip.AddrPortFrom(target.Addr().Unmap(), target.Port())
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(listen))
	if err != nil {
		return nil, fmt.Errorf("udpproxy: %w", err)
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	p := &Proxy{
		target:   target,
		addr:     netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
		client:   conn,
		cfg:      cfg.withDefaults(),
		rng:      [2]*rand.Rand{newRand(cfg.Seed, toTarget), newRand(cfg.Seed, toClient)},
		sessions: make(map[netip.AddrPort]*session),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if cfg.RotatePort > 0 {
		p.nextRotate = time.Now().Add(cfg.RotatePort)
	}
	p.wg.Add(2)
	go p.readClient()
	go p.schedule()
	return p, nil
}

// Addr returns the address clients send to.
func (p *Proxy) Addr() netip.AddrPort { return p.addr }

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		ToTarget:  p.stats[toTarget].snapshot(),
		ToClient:  p.stats[toClient].snapshot(),
		Rotations: p.rotations.Load(),
	}
}

// SetConfig replaces the impairments; datagrams already queued keep their
// delay. The generators are reseeded only when Seed changes, and a change
// of RotatePort restarts the rotation period from now. An invalid
// configuration is a programming error and panics.
func (p *Proxy) SetConfig(cfg Config) {
	if err := cfg.validate(); err != nil {
		panic("udpproxy: SetConfig: " + err.Error())
	}
	cfg = cfg.withDefaults()
	p.mu.Lock()
	old := p.cfg
	p.cfg = cfg
	if cfg.Seed != old.Seed {
		p.rng = [2]*rand.Rand{newRand(cfg.Seed, toTarget), newRand(cfg.Seed, toClient)}
	}
	if cfg.RotatePort != old.RotatePort {
		p.nextRotate = time.Time{}
		if cfg.RotatePort > 0 {
			p.nextRotate = time.Now().Add(cfg.RotatePort)
		}
	}
	p.mu.Unlock()
	p.poke()
}

// Blackout drops every datagram read in either direction from now until d
// has passed, as a link that goes dark and comes back would: the
// datagrams are counted as Received, Lost and BlackedOut, draw no
// impairment decision, and copies already queued are still delivered. A
// new call replaces the current blackout; d <= 0 ends it.
func (p *Proxy) Blackout(d time.Duration) {
	p.mu.Lock()
	p.blackoutUntil = time.Time{}
	if d > 0 {
		p.blackoutUntil = time.Now().Add(d)
	}
	p.mu.Unlock()
}

// BlockClient cuts off (on) or restores the clients at IP address ip:
// while cut off, their datagrams and those the target sends them are
// dropped and counted as Lost and BlackedOut, as in a blackout of that
// client's link alone (a multi-link test's one dark path).
func (p *Proxy) BlockClient(ip netip.Addr, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == nil {
		p.cut = make(map[netip.Addr]bool)
	}
	if on {
		p.cut[ip.Unmap()] = true
	} else {
		delete(p.cut, ip.Unmap())
	}
}

// cutOff reports whether a datagram in direction dir of the client at ip
// is cut off (BlockClient), and counts it if so. The caller holds p.mu.
func (p *Proxy) cutOff(dir int, ip netip.Addr) bool {
	if !p.cut[ip.Unmap()] {
		return false
	}
	p.countBlackedOut(dir)
	return true
}

// countBlackedOut counts a datagram read in direction dir and dropped by
// a blackout or a cut.
func (p *Proxy) countBlackedOut(dir int) {
	st := &p.stats[dir]
	st.received.Add(1)
	st.lost.Add(1)
	st.blackedOut.Add(1)
}

// blackedOut reports whether a datagram read now in direction dir falls
// in a blackout, and counts it if so. The caller holds p.mu.
func (p *Proxy) blackedOut(dir int) bool {
	if p.blackoutUntil.IsZero() {
		return false
	}
	if !time.Now().Before(p.blackoutUntil) {
		p.blackoutUntil = time.Time{}
		return false
	}
	p.countBlackedOut(dir)
	return true
}

// tap shows a datagram read in direction dir to Config.Tap, if set.
func (p *Proxy) tap(dir int, pkt []byte) {
	p.mu.Lock()
	f := p.cfg.Tap
	p.mu.Unlock()
	if f != nil {
		f(dir == toTarget, pkt)
	}
}

// Close closes every socket, discards queued datagrams and returns once
// all the proxy's goroutines have exited. Later calls return the result of
// the first.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		var conns []*net.UDPConn
		for _, s := range p.sessions {
			conns = s.detach(conns)
		}
		p.sessions = nil
		p.mu.Unlock()

		close(p.done)
		p.closeErr = p.client.Close()
		for _, c := range conns {
			c.Close()
		}
		p.wg.Wait()

		p.mu.Lock()
		for _, d := range p.queue {
			putBuf(d.buf)
		}
		p.queue = nil
		p.mu.Unlock()
	})
	return p.closeErr
}

// detach marks s gone and appends all its sockets to conns, for the caller
// to close outside the lock. The caller holds Proxy.mu.
func (s *session) detach(conns []*net.UDPConn) []*net.UDPConn {
	s.gone = true
	conns = append(conns, s.up)
	for _, r := range s.retired {
		conns = append(conns, r.conn)
	}
	s.retired = nil
	return conns
}

// poke wakes the scheduler without blocking.
func (p *Proxy) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// listenUpstream opens a new upstream socket on an ephemeral port.
func (p *Proxy) listenUpstream() (*net.UDPConn, error) {
	a := p.target.Addr()
	var local netip.Addr
	switch {
	case a.Is4() && a.IsLoopback():
		local = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case a.Is4():
		local = netip.IPv4Unspecified()
	case a.IsLoopback():
		local = netip.IPv6Loopback()
	default:
		local = netip.IPv6Unspecified()
	}
	network := "udp4"
	if a.Is6() {
		network = "udp6"
	}
	return net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
}

// startReader runs a reader goroutine for upstream socket c of session s.
// The caller holds p.mu and has checked that the proxy is not closed, so
// Close's Wait cannot miss it.
func (p *Proxy) startReader(s *session, c *net.UDPConn) {
	p.wg.Add(1)
	go p.readUpstream(s, c)
}

// readErr decides what a reader does after a read error: stop when the
// socket or the proxy is closed, otherwise back off briefly and go on, so
// that a transient error cannot make the reader spin.
func (p *Proxy) readErr(err error) (stop bool) {
	if errors.Is(err, net.ErrClosed) {
		return true
	}
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// readClient is the goroutine that reads the client-facing socket.
func (p *Proxy) readClient() {
	defer p.wg.Done()
	buf := make([]byte, bufSize)
	for {
		n, src, err := p.client.ReadFromUDPAddrPort(buf)
		if err != nil {
			if p.readErr(err) {
				return
			}
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		p.fromClient(src, buf[:n])
	}
}

// readUpstream is the goroutine that reads upstream socket c of session s
// until c is closed. Datagrams from anyone but the target are ignored.
func (p *Proxy) readUpstream(s *session, c *net.UDPConn) {
	defer p.wg.Done()
	// Rotation keeps opening sockets, so their read buffers are recycled.
	bp := largePool.Get().(*[]byte)
	defer largePool.Put(bp)
	buf := *bp
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if p.readErr(err) {
				return
			}
			continue
		}
		if src.Addr().Unmap() != p.target.Addr() || src.Port() != p.target.Port() {
			continue
		}
		p.tap(toClient, buf[:n])
		p.mu.Lock()
		if p.closed || s.gone {
			p.mu.Unlock()
			return
		}
		if p.blackedOut(toClient) || p.cutOff(toClient, s.client.Addr()) {
			p.mu.Unlock()
			continue
		}
		pl := p.decide(toClient, n)
		p.shape(toClient, n, &pl)
		p.mu.Unlock()
		p.apply(toClient, s, p.client, buf[:n], &pl)
	}
}

// fromClient relays one datagram from client src, creating its session
// on first contact.
func (p *Proxy) fromClient(src netip.AddrPort, pkt []byte) {
	p.tap(toTarget, pkt)
	p.mu.Lock()
	s := p.sessions[src]
	if s == nil {
		p.mu.Unlock()
		var err error
		if s, err = p.newSession(src); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.stats[toTarget].received.Add(1)
			p.stats[toTarget].failed.Add(1)
			return
		}
		p.mu.Lock()
	}
	if p.closed || s.gone {
		p.mu.Unlock()
		return
	}
	p.useClock++
	s.lastUse = p.useClock
	if p.blackedOut(toTarget) || p.cutOff(toTarget, s.client.Addr()) {
		p.mu.Unlock()
		return
	}
	up := s.up
	pl := p.decide(toTarget, len(pkt))
	p.shape(toTarget, len(pkt), &pl)
	p.mu.Unlock()
	p.apply(toTarget, s, up, pkt, &pl)
}

// newSession opens the upstream socket for a new client, evicting the
// least recently used session when MaxClients are already kept. Only the
// client reader calls it, so two sessions for one address cannot race.
func (p *Proxy) newSession(src netip.AddrPort) (*session, error) {
	c, err := p.listenUpstream()
	if err != nil {
		return nil, err
	}
	var stale []*net.UDPConn
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return nil, net.ErrClosed
	}
	if len(p.sessions) >= MaxClients {
		var lru *session
		for _, s := range p.sessions {
			if lru == nil || s.lastUse < lru.lastUse {
				lru = s
			}
		}
		delete(p.sessions, lru.client)
		stale = lru.detach(stale)
	}
	s := &session{client: src, up: c}
	p.sessions[src] = s
	p.startReader(s, c)
	p.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
	return s, nil
}

// apply carries out plan pl for datagram pkt of session s in direction
// dir: immediate copies are written from conn at once (corrupted in place,
// then repaired), delayed copies are queued. pkt belongs to the caller and
// is unchanged on return.
func (p *Proxy) apply(dir int, s *session, conn *net.UDPConn, pkt []byte, pl *plan) {
	for i := range pl.n {
		c := &pl.copies[i]
		if c.delay > 0 {
			p.enqueue(dir, s, pkt, c)
			continue
		}
		c.flip(pkt)
		p.write(dir, conn, s, pkt)
		c.flip(pkt)
	}
}

// enqueue copies pkt, corrupts the copy as planned and queues it for the
// scheduler, or drops it when the queue is full.
func (p *Proxy) enqueue(dir int, s *session, pkt []byte, c *copyPlan) {
	buf := getBuf(len(pkt))
	n := copy(*buf, pkt)
	c.flip((*buf)[:n])
	at := time.Now().Add(c.delay)
	p.mu.Lock()
	if p.closed || len(p.queue) >= p.cfg.MaxQueue {
		closed := p.closed
		p.mu.Unlock()
		putBuf(buf)
		if !closed {
			p.stats[dir].dropped.Add(1)
		}
		return
	}
	p.seq++
	p.queue.push(delayed{at: at, seq: p.seq, dir: dir, s: s, buf: buf, n: n})
	first := p.queue[0].seq == p.seq
	p.mu.Unlock()
	if first {
		p.poke()
	}
}

// write sends one copy: to the target from an upstream socket, or to the
// session's client from the client-facing socket. A nil conn means the
// session is gone.
func (p *Proxy) write(dir int, conn *net.UDPConn, s *session, pkt []byte) {
	dst := p.target
	if dir == toClient {
		dst = s.client
	}
	if conn == nil {
		p.stats[dir].failed.Add(1)
		return
	}
	if _, err := conn.WriteToUDPAddrPort(pkt, dst); err != nil {
		p.stats[dir].failed.Add(1)
		return
	}
	p.stats[dir].forwarded.Add(1)
}
