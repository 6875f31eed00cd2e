package net

import (
	"context"
	"net"

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
// from every peer, with a fresh identity.
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
// ("[host]:port"), answering handshakes.
func (lc *ListenConfig) endpoint(ctx context.Context, network, address string) (*endpoint.Endpoint, error) {
	udp, err := udpNetwork(network)
	if err != nil {
		return nil, err
	}
	laddr, err := listenAddr(ctx, udp, address)
	if err != nil {
		return nil, err
	}
	return endpoint.Listen(udp, laddr, lc.Config.endpoint(true))
}

func (lc *ListenConfig) listen(ctx context.Context, network, address string) (*Listener, error) {
	ep, err := lc.endpoint(ctx, network, address)
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
	ep   *endpoint.Endpoint // owned: closed with the listener (nil for a Host's)
	svc  *endpoint.Service
	addr *Addr
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
	s := st.Session()
	return &Conn{st: st, laddr: l.addr, raddr: &Addr{Key: s.Peer(), Addr: s.RemoteAddr()}}, nil
}

// Close stops listening. A listener from Listen also closes its socket
// and every session on it; one from a Host leaves the Host running.
func (l *Listener) Close() error {
	l.svc.Close()
	if l.ep != nil {
		l.ep.Close(wire.CloseShuttingDown, "listener closed")
	}
	return nil
}

// Addr returns "<public key>@<ip>:<port>", which Dial accepts.
func (l *Listener) Addr() net.Addr { return l.addr }
