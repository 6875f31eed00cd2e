package net

import (
	"net"
	"net/netip"
	"sync"
)

// sourceAddrs caches, per socket address and remote IP, the source address
// the kernel picks toward that IP: a socket bound to the unspecified
// address (what Dial and Listen(":port") use) has no single local IP, but
// each of its channels has one, which is what users expect
// Conn.LocalAddr to show (as a TCP connection's does). Bounded: it is
// flushed when it grows past sourceAddrMax entries.
var sourceAddrs struct {
	// mu guards m.
	mu sync.Mutex
	m  map[sourceKey]*Addr
}

type sourceKey struct {
	local  *Addr // the socket's address (one per socket and key)
	remote netip.Addr
}

const sourceAddrMax = 4096

// sourceAddr returns local with its unspecified IP replaced by the source
// IP the system routes toward remote; local itself when its IP is
// specified, or when the route cannot be found.
func sourceAddr(local *Addr, remote netip.AddrPort) *Addr {
	if !local.Addr.Addr().IsUnspecified() || !remote.IsValid() {
		return local
	}
	k := sourceKey{local, remote.Addr().Unmap()}
	sourceAddrs.mu.Lock()
	a := sourceAddrs.m[k]
	sourceAddrs.mu.Unlock()
	if a != nil {
		return a
	}
	ip, ok := routeSource(k.remote)
	if !ok {
		return local
	}
	a = &Addr{Key: local.Key, Addr: netip.AddrPortFrom(ip, local.Addr.Port())}
	sourceAddrs.mu.Lock()
	if sourceAddrs.m == nil || len(sourceAddrs.m) >= sourceAddrMax {
		sourceAddrs.m = make(map[sourceKey]*Addr)
	}
	sourceAddrs.m[k] = a
	sourceAddrs.mu.Unlock()
	return a
}

// routeSource asks the kernel which source address it uses toward ip: a
// UDP socket connected to it (which sends nothing) is given one.
func routeSource(ip netip.Addr) (netip.Addr, bool) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 9)))
	if err != nil {
		return netip.Addr{}, false
	}
	defer c.Close()
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	src := la.AddrPort().Addr().Unmap()
	return src, src.IsValid() && !src.IsUnspecified()
}
