// Package net is Haven's public API. It mirrors the standard library's net
// package, so that changing the import and the network name is the whole
// migration:
//
//	conn, err := net.Dial("haven", "<public key>@example.com:4433")
//	ln, err := net.Listen("haven", ":4433")
//
// Every connection is a channel on an authenticated, encrypted session
// (Noise IK, no certificates: a peer is its public key). A Dialer keeps one
// session per remote peer, so each further Dial costs no handshake; the
// channels of a session never block each other; and a session survives a
// change of the peer's address or port.
package net

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/havenproto/haven/wire"
)

// Key types, re-exported from the wire format.
type (
	PublicKey  = wire.PublicKey
	PrivateKey = wire.PrivateKey
)

// GeneratePrivateKey makes a new static identity.
func GeneratePrivateKey() (PrivateKey, error) { return wire.GeneratePrivateKey() }

// ParsePublicKey and ParsePrivateKey read the 43-character text form.
func ParsePublicKey(s string) (PublicKey, error)   { return wire.ParsePublicKey(s) }
func ParsePrivateKey(s string) (PrivateKey, error) { return wire.ParsePrivateKey(s) }

// Addr is a Haven address: a peer's public key and a UDP address. Its
// String form "<public key>@<ip>:<port>" is what Dial takes.
type Addr struct {
	Key  PublicKey
	Addr netip.AddrPort
}

// Network returns "haven".
func (a *Addr) Network() string { return "haven" }

// String returns "<public key>@<ip>:<port>" (IPv6 in brackets).
func (a *Addr) String() string {
	if a == nil {
		return "<nil>"
	}
	return a.Key.String() + "@" + a.Addr.String()
}

// udpNetwork maps a Haven network name to its UDP one.
func udpNetwork(network string) (string, error) {
	udp, _, err := transportOf(network)
	return udp, err
}

// transportOf returns the IP network of a Haven network ("udp", "udp4" or
// "udp6", naming the address family even for TCP) and whether it forces
// the stream (TCP) transport of docs/PROTOCOL.md §8: "haven+tcp",
// "haven4+tcp" and "haven6+tcp" do.
func transportOf(network string) (udp string, stream bool, err error) {
	base, stream := strings.CutSuffix(network, "+tcp")
	switch base {
	case "haven":
		return "udp", stream, nil
	case "haven4":
		return "udp4", stream, nil
	case "haven6":
		return "udp6", stream, nil
	}
	return "", false, net.UnknownNetworkError(network)
}

// ResolveAddr parses "<public key>@<host>:<port>" and resolves the host.
// Its errors are *net.OpError (Op "resolve") wrapping the cause: a
// net.UnknownNetworkError, a *wire.AddressError, a *net.DNSError or a
// *net.AddrError.
func ResolveAddr(network, address string) (*Addr, error) {
	a, err := resolveAddr(context.Background(), time.Time{}, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "resolve", Net: network, Addr: opAddr(address), Err: err}
	}
	return &a, nil
}

// resolveAddr is ResolveAddr returning the value (a dial allocates no
// Addr for it), with a deadline (zero: none) on the name lookup.
func resolveAddr(ctx context.Context, deadline time.Time, network, address string) (Addr, error) {
	udp, err := udpNetwork(network)
	if err != nil {
		return Addr{}, err
	}
	a, err := wire.ParseAddress(address)
	if err != nil {
		return Addr{}, err
	}
	var ip netip.Addr
	if ip, err = netip.ParseAddr(a.Host); err != nil {
		if !deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, ipNetwork(udp), a.Host)
		if err != nil {
			return Addr{}, err
		}
		if len(ips) == 0 {
			return Addr{}, &net.DNSError{Err: "no suitable address", Name: a.Host, IsNotFound: true}
		}
		ip = ips[0]
	}
	ip = ip.Unmap()
	if udp == "udp4" && !ip.Is4() || udp == "udp6" && !ip.Is6() {
		return Addr{}, &net.AddrError{Err: "address family does not match network " + network, Addr: address}
	}
	return Addr{Key: a.Key, Addr: netip.AddrPortFrom(ip, a.Port)}, nil
}

func ipNetwork(udp string) string {
	switch udp {
	case "udp4":
		return "ip4"
	case "udp6":
		return "ip6"
	}
	return "ip"
}

// listenAddr parses a listening address: "[host]:port", no key.
func listenAddr(ctx context.Context, udp, address string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, &net.AddrError{Err: "invalid port", Addr: address}
	}
	if host == "" {
		if udp == "udp6" {
			return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(p)), nil
		}
		if udp == "udp4" {
			return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(p)), nil
		}
		return netip.AddrPortFrom(netip.Addr{}, uint16(p)), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.DefaultResolver.LookupNetIP(ctx, ipNetwork(udp), host)
		if lerr != nil || len(ips) == 0 {
			return netip.AddrPort{}, &net.AddrError{Err: "cannot resolve host", Addr: address}
		}
		ip = ips[0]
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
}

// dialable maps an unspecified address (a listener on all interfaces) to
// loopback, so that a listener's own address can be dialled.
func dialable(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().IsUnspecified() || !ap.Addr().IsValid() {
		if ap.Addr().Is6() {
			return netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port())
	}
	return ap
}

var errMissingAddress = &net.AddrError{Err: "missing address"}

// errDeadline is the error of a call whose deadline has passed.
func errDeadline() error { return os.ErrDeadlineExceeded }
