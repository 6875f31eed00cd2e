//go:build linux

package udp

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysConn is the direct path: the socket's file descriptor, driven with
// recvmmsg/sendmmsg (or recvmsg/sendmsg) through syscall.RawConn, so that
// blocking goes through the runtime's poller and Close and deadlines work
// as for any net.Conn.
type sysConn struct {
	rc    syscall.RawConn
	v6    bool // AF_INET6 socket: destinations are written as sockaddr_in6
	batch bool // recvmmsg/sendmmsg rather than recvmsg/sendmsg
	gro   bool // UDP_GRO on: reads carry control-message space
	size  int  // the batch size: the most messages per system call
	r     recvState
	w     sendState
}

// newSysConn configures uc (buffers, GRO, the GSO probe), records the
// outcome in caps and allocates the batch scratch.
func newSysConn(uc *net.UDPConn, o Options, caps *Caps) (*sysConn, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &sysConn{rc: rc, batch: !o.DisableBatch}
	// Everything is set in one Control call: each call costs a closure
	// and a lock of the descriptor, and a client opens a socket per dial.
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = s.configure(int(fd), o, caps) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}

	n := o.BatchSize
	switch {
	case n <= 0:
		n = DefaultBatchSize
	case n > maxBatchSize:
		n = maxBatchSize
	}
	if !s.batch {
		n = 1
	}
	caps.Batch, caps.GRO, caps.BatchSize = s.batch, s.gro, n
	s.size = n
	s.r.fn = s.recv // the read scratch is borrowed per read (scratchPool)
	s.w.fn = s.send // the write scratch is sized by the first writes
	return s, nil
}

// configure checks the socket's family and sets its buffers, GRO and the
// GSO probe on the descriptor fd, recording the outcome in s and caps.
func (s *sysConn) configure(fd int, o Options, caps *Caps) error {
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return err
	}
	switch domain {
	case unix.AF_INET:
	case unix.AF_INET6:
		s.v6 = true
	default:
		return unix.EAFNOSUPPORT
	}
	caps.DontFragment = setDontFragment(fd, s.v6)
	caps.ReadBuffer = setBuffer(fd, o.ReadBuffer, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF)
	caps.WriteBuffer = setBuffer(fd, o.WriteBuffer, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF)
	if !o.DisableGRO {
		s.gro = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1) == nil
	}
	if !o.DisableGSO {
		// A socket-wide segment size of 0 changes nothing (every send
		// without a UDP_SEGMENT control message stays one datagram); the
		// option exists exactly when the kernel has UDP GSO.
		caps.GSO = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, 0) == nil
	}
	return nil
}

// setBuffer asks for a socket buffer of size bytes (0: the default,
// negative: leave it), first with the FORCE option, which lets root exceed
// net.core.[rw]mem_max, then with the ordinary option, and returns the
// size the kernel reports.
func setBuffer(fd, size, force, opt int) int {
	if size == 0 {
		size = DefaultBufferSize
	}
	current := func() int {
		got, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
		return got
	}
	// Never lower a buffer already larger (the kernel reports double what
	// was set): a socket passed by systemd may come with ReceiveBuffer=
	// beyond what an unprivileged service could set itself.
	if size > 0 && current() < 2*size && unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, size) // best effort: the kernel clamps to the sysctl cap
	}
	return current()
}

// setInt sets an integer socket option.
func setInt(rc syscall.RawConn, level, opt, v int) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), level, opt, v)
	}); err != nil {
		return err
	}
	return serr
}

// isGSORejection reports whether a send error with a UDP_SEGMENT control
// message means the kernel or device will not do GSO here: EIO (no
// checksum offload, or a transform on the route), EINVAL (too many
// segments for the device, zero checksums, ...) or an unsupported option.
func isGSORejection(errno syscall.Errno) bool {
	switch errno {
	case unix.EIO, unix.EINVAL, unix.EOPNOTSUPP, unix.ENOPROTOOPT:
		return true
	}
	return false
}

// setDontFragment makes the kernel send every datagram whole with the
// don't-fragment bit set, and fail a send larger than the interface MTU
// with EMSGSIZE, as path MTU discovery needs (PROTOCOL.md §6.5). PROBE
// rather than DO: the kernel's cached path MTU comes from ICMP, which an
// attacker can forge; Haven probes for itself. An IPv6 socket also gets
// the IPv4 option, for IPv4-mapped peers. It reports success.
func setDontFragment(fd int, v6 bool) bool {
	ok := true
	if v6 {
		ok = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE) == nil
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE) // dual-stack sockets only
		return ok
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE) == nil
}
