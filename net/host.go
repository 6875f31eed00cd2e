package net

import (
	"context"
	"net"
	"sync"

	"github.com/havenproto/haven/compat"
	"github.com/havenproto/haven/internal/endpoint"
	"github.com/havenproto/haven/wire"
)

// Session close codes a server may use (docs/PROTOCOL.md §5.3).
const (
	// CloseRestarting tells clients the server is restarting: their next
	// Dial makes a new session once it is back.
	CloseRestarting = wire.CloseRestarting
	// CloseShuttingDown tells clients the server is going away.
	CloseShuttingDown = wire.CloseShuttingDown
)

// Host is one UDP socket serving many named services: the multiplexing
// listener. Peers reach every service on one port; each Dial names its
// service (Dialer.Service), and a channel to a service nobody serves is
// refused with an error naming it.
type Host struct {
	ep   *endpoint.Endpoint
	cfg  Config // with the Host's private key, for ServeTCP
	addr *Addr
	// mu guards closed.
	mu     sync.Mutex
	closed bool
}

// ListenHost opens a Host on network and address ("[host]:port"). On
// "haven" it also accepts the TCP fallback at the UDP port's number
// (docs/PROTOCOL.md §8) unless lc.Config.DisableTCP; on "haven+tcp" it
// listens on TCP only.
func (lc *ListenConfig) ListenHost(ctx context.Context, network, address string) (*Host, error) {
	h, err := lc.listenHost(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: opAddr(address), Err: err}
	}
	return h, nil
}

func (lc *ListenConfig) listenHost(ctx context.Context, network, address string) (*Host, error) {
	ep, cfg, err := lc.endpoints(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &Host{ep: ep, cfg: cfg, addr: &Addr{Key: ep.PublicKey(), Addr: ep.LocalAddr()}}, nil
}

// NewHost serves on an existing datagram socket, such as one passed by
// systemd socket activation (package listener). The Host owns pc. ServeTCP
// adds a TCP listener (systemd's ListenStream=) for the fallback.
func NewHost(pc net.PacketConn, cfg Config) (*Host, error) {
	if cfg.PrivateKey.IsZero() {
		k, err := wire.GeneratePrivateKey()
		if err != nil {
			pc.Close()
			return nil, &net.OpError{Op: "listen", Net: "haven", Addr: pc.LocalAddr(), Err: err}
		}
		cfg.PrivateKey = k // ServeTCP's endpoints need the same key
	}
	ep, err := endpoint.New(pc, cfg.endpoint(true))
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "haven", Addr: pc.LocalAddr(), Err: err}
	}
	return &Host{ep: ep, cfg: cfg, addr: &Addr{Key: ep.PublicKey(), Addr: ep.LocalAddr()}}, nil
}

// ServeTCP serves the Host's sessions over TCP connections accepted on ln
// as well (the stream fallback of docs/PROTOCOL.md §8), with the Host's
// key and services; the Host owns ln and closes it with itself. Use it
// with a TCP socket from systemd (ListenStream= beside ListenDatagram=),
// or any TCP listener.
func (h *Host) ServeTCP(ln net.Listener) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		ln.Close()
		return &net.OpError{Op: "listen", Net: "haven+tcp", Addr: ln.Addr(), Err: net.ErrClosed}
	}
	t, err := compat.ListenStream(ln, h.cfg.streamConfig())
	if err != nil {
		return &net.OpError{Op: "listen", Net: "haven+tcp", Addr: ln.Addr(), Err: err}
	}
	if _, err := h.ep.AddTransport(t); err != nil {
		return &net.OpError{Op: "listen", Net: "haven+tcp", Addr: ln.Addr(), Err: err}
	}
	return nil
}

// Listen returns a listener for stream channels opened to service ("" is
// the default service, what plain Dial reaches).
func (h *Host) Listen(service string) (net.Listener, error) {
	svc, err := h.ep.Listen(service)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "haven", Addr: h.addr, Err: err}
	}
	return &Listener{svc: svc, addr: h.addr}, nil
}

// ListenPacket returns a PacketConn for datagram channels to service.
func (h *Host) ListenPacket(service string) (net.PacketConn, error) {
	svc, err := h.ep.ListenDatagrams(service)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "haven", Addr: h.addr, Err: err}
	}
	return newPacketConn(h.ep, svc, h.addr, false), nil
}

// Addr returns "<public key>@<ip>:<port>".
func (h *Host) Addr() net.Addr { return h.addr }

// Shutdown closes every session with code and reason (CloseRestarting
// tells clients to reconnect), stops every service and closes the socket.
func (h *Host) Shutdown(code uint32, reason string) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return &net.OpError{Op: "close", Net: "haven", Addr: h.addr, Err: net.ErrClosed}
	}
	h.closed = true
	h.mu.Unlock()
	return h.ep.Close(code, reason)
}

// Close is Shutdown with CloseShuttingDown.
func (h *Host) Close() error { return h.Shutdown(CloseShuttingDown, "server shutting down") }

// Sessions returns the host's live sessions, for monitoring (haven show).
func (h *Host) Sessions() []*Session {
	var out []*Session
	for _, s := range h.ep.Sessions() {
		out = append(out, &Session{s: s, local: h.addr})
	}
	return out
}
