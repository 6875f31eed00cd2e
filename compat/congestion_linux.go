package compat

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// setCongestion asks the kernel for the TCP congestion control name on
// the socket rc (TCP_CONGESTION).
func setCongestion(rc syscall.RawConn, name string) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, name)
	}); cerr != nil {
		return cerr
	}
	return err
}

// congestionOf returns the TCP congestion control of the socket rc.
func congestionOf(rc syscall.RawConn) (string, error) {
	var name string
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		name, err = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	}); cerr != nil {
		return "", cerr
	}
	return name, err
}
