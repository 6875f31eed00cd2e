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
	var domain int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	switch domain {
	case unix.AF_INET:
	case unix.AF_INET6:
		s.v6 = true
	default:
		return nil, unix.EAFNOSUPPORT
	}

	caps.ReadBuffer = setBuffer(rc, o.ReadBuffer, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, uc.SetReadBuffer)
	caps.WriteBuffer = setBuffer(rc, o.WriteBuffer, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, uc.SetWriteBuffer)

	if !o.DisableGRO {
		s.gro = setInt(rc, unix.SOL_UDP, unix.UDP_GRO, 1) == nil
	}
	if !o.DisableGSO {
		// A socket-wide segment size of 0 changes nothing (every send
		// without a UDP_SEGMENT control message stays one datagram); the
		// option exists exactly when the kernel has UDP GSO.
		caps.GSO = setInt(rc, unix.SOL_UDP, unix.UDP_SEGMENT, 0) == nil
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
	s.r.init(n, s)
	s.w.init(n, s)
	return s, nil
}

// setBuffer asks for a socket buffer of size bytes (0: the default,
// negative: leave it), first with the FORCE option, which lets root exceed
// net.core.[rw]mem_max, then with the ordinary setter, and returns the
// size the kernel reports.
func setBuffer(rc syscall.RawConn, size, force, opt int, set func(int) error) int {
	if size == 0 {
		size = DefaultBufferSize
	}
	current := func() int {
		var got int
		_ = rc.Control(func(fd uintptr) {
			got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt)
		})
		return got
	}
	// Never lower a buffer already larger (the kernel reports double what
	// was set): a socket passed by systemd may come with ReceiveBuffer=
	// beyond what an unprivileged service could set itself.
	if size > 0 && current() < 2*size && setInt(rc, unix.SOL_SOCKET, force, size) != nil {
		_ = set(size) // best effort: the kernel clamps to the sysctl cap
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
