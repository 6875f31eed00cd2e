package net

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/havenproto/haven/compat"
	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/wire"
)

// ListenConfig configures listeners. The zero value is ready to use.
type ListenConfig struct {
	// Config tunes the sessions; its PrivateKey is the listener's identity
	// (zero: a fresh one, shown in Addr).
	Config Config
	// Service is the service name served (default "", the default service).
	Service string
}

// Listen listens on the UDP address ("[host]:port") for stream channels
// from every peer, with a fresh identity. On "haven+tcp" (and its 4 and 6
// forms) it listens on TCP instead, for the stream transport of
// docs/PROTOCOL.md §8.
func Listen(network, address string) (net.Listener, error) {
	var lc ListenConfig
	return lc.Listen(context.Background(), network, address)
}

// Listen listens on network and address ("[host]:port").
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	ln, err := lc.listen(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: opAddr(address), Err: err}
	}
	return ln, nil
}

// endpoint opens the listening socket for network and address
// ("[host]:port"), answering handshakes: UDP, or TCP alone for the
// "haven+tcp" networks.
func (lc *ListenConfig) endpoint(ctx context.Context, network, address string) (*endpoint.Endpoint, error) {
	return lc.endpointWith(ctx, network, address, lc.Config)
}

func (lc *ListenConfig) endpointWith(ctx context.Context, network, address string, cfg Config) (*endpoint.Endpoint, error) {
	udp, stream, err := transportOf(network)
	if err != nil {
		return nil, err
	}
	laddr, err := listenAddr(ctx, udp, address)
	if err != nil {
		return nil, err
	}
	if stream {
		// "haven+tcp": the stream transport alone (docs/PROTOCOL.md §8).
		return lc.streamEndpoint(ctx, udp, laddr, cfg.endpoint(true))
	}
	return endpoint.Listen(udp, laddr, cfg.endpoint(true))
}

// streamEndpoint opens an accepting endpoint on TCP at laddr.
func (lc *ListenConfig) streamEndpoint(ctx context.Context, udp string, laddr netip.AddrPort,
	cfg endpoint.Config) (*endpoint.Endpoint, error) {
	t, err := lc.streamTransport(ctx, udp, laddr)
	if err != nil {
		return nil, err
	}
	return endpoint.NewWithTransport(t, cfg)
}

// streamTransport listens on TCP at laddr for the stream transport.
func (lc *ListenConfig) streamTransport(ctx context.Context, udp string, laddr netip.AddrPort) (*compat.StreamTransport, error) {
	var nlc net.ListenConfig
	ln, err := nlc.Listen(ctx, "tcp"+strings.TrimPrefix(udp, "udp"), laddr.String())
	if err != nil {
		return nil, err
	}
	return compat.ListenStream(ln, lc.Config.streamConfig())
}

// sameKeyTries bounds the attempts at a UDP port whose number is free on
// TCP too, when the address asked for port 0.
const sameKeyTries = 8

// endpoint opens what a listener (Listen, ListenHost) on network and
// address serves on, with cfg, lc.Config with its private key made here
// when zero, so that a Host's later ServeTCP has the same identity: a UDP
// socket with the TCP fallback at the same port number as a second link
// (issue #13); or one transport alone on a "haven+tcp" network or with
// Config.DisableTCP.
func (lc *ListenConfig) endpoints(ctx context.Context, network, address string) (ep *endpoint.Endpoint,
	cfg Config, err error) {
	cfg = lc.Config
	if cfg.PrivateKey.IsZero() {
		if cfg.PrivateKey, err = wire.GeneratePrivateKey(); err != nil {
			return nil, cfg, err
		}
	}
	udp, stream, err := transportOf(network)
	if err != nil {
		return nil, cfg, err
	}
	if stream || cfg.DisableTCP {
		ep, err = lc.endpointWith(ctx, network, address, cfg)
		return ep, cfg, err
	}
	laddr, err := listenAddr(ctx, udp, address)
	if err != nil {
		return nil, cfg, err
	}
	for try := 1; ; try++ {
		ep, err := endpoint.Listen(udp, laddr, cfg.endpoint(true))
		if err != nil {
			return nil, cfg, err
		}
		t, err := lc.streamTransport(ctx, udp, netip.AddrPortFrom(laddr.Addr(), ep.LocalAddr().Port()))
		if err == nil {
			if _, err = ep.AddTransport(t); err == nil {
				return ep, cfg, nil
			}
		}
		ep.Close(wire.CloseShuttingDown, "")
		if laddr.Port() == 0 && try < sameKeyTries && errors.Is(err, syscall.EADDRINUSE) {
			continue // that number is taken on TCP: another UDP port
		}
		return nil, cfg, fmt.Errorf("TCP fallback at the UDP port's number (Config.DisableTCP turns it off): %w", err)
	}
}

func (lc *ListenConfig) listen(ctx context.Context, network, address string) (*Listener, error) {
	ep, _, err := lc.endpoints(ctx, network, address)
	if err != nil {
		return nil, err
	}
	svc, err := ep.Listen(lc.Service)
	if err != nil {
		ep.Close(wire.CloseShuttingDown, "")
		return nil, err
	}
	return &Listener{ep: ep, svc: svc, addr: &Addr{Key: ep.PublicKey(), Addr: ep.LocalAddr()}}, nil
}

// Listener accepts stream channels on one socket, from every peer.
type Listener struct {
	ep   *endpoint.Endpoint // owned: closed after the listener and its conns (nil for a Host's)
	svc  *endpoint.Service
	addr *Addr
	// mu guards closed and live (accepted conns not yet closed): the
	// socket of a closed listener lives on until its last conn closes.
	mu     sync.Mutex
	closed bool
	live   int
}

var _ net.Listener = (*Listener)(nil)

// Accept waits for the next channel; it returns as soon as the peer has
// dialed, before any data.
func (l *Listener) Accept() (net.Conn, error) {
	st, err := l.svc.Accept(context.Background())
	if err != nil {
		if err == endpoint.ErrClosed {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: "haven", Addr: l.addr, Err: err}
	}
	c := newConn(st, l.addr)
	if l.ep != nil {
		l.mu.Lock()
		l.live++
		l.mu.Unlock()
		c.closeEndpoint = l.connClosed
	}
	return c, nil
}

// connClosed notes that an accepted conn closed; the last one to close
// after the listener closes the socket.
func (l *Listener) connClosed() {
	l.mu.Lock()
	l.live--
	last := l.closed && l.live == 0
	l.mu.Unlock()
	if last {
		l.drain()
	}
}

// Close stops listening, as a net.Listener does: new channels are
// refused (and, for a listener from Listen, new handshakes go unanswered),
// while connections already accepted go on; the socket closes when the
// last of them does. A Host's listener leaves the Host running.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: "haven", Addr: l.addr, Err: net.ErrClosed}
	}
	l.closed = true
	idle := l.live == 0
	l.mu.Unlock()
	l.svc.Close()
	if l.ep != nil {
		l.ep.StopAccepting()
		if idle {
			l.drain()
		}
	}
	return nil
}

// drain closes the listener's endpoint once its sessions have delivered
// what was written.
func (l *Listener) drain() {
	l.ep.Drain(drainTimeout, wire.CloseShuttingDown, "listener closed")
}

// drainTimeout bounds how long a closed listener's socket waits for its
// sessions to finish delivering what was written before it closes them.
const drainTimeout = 10 * time.Second

// Addr returns "<public key>@<ip>:<port>", which Dial accepts.
func (l *Listener) Addr() net.Addr { return l.addr }
