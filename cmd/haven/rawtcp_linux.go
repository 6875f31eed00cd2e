package main

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const haveRawIO = true

// rawRead reads into b (non-empty) from the non-blocking socket fd:
// again when it has nothing yet (EAGAIN), else the count or the errno.
func rawRead(fd uintptr, b []byte) (n int, errno syscall.Errno, again bool) {
	return rawIO(unix.SYS_READ, fd, b)
}

// rawWrite writes b (non-empty) to the non-blocking socket fd, as rawRead.
func rawWrite(fd uintptr, b []byte) (n int, errno syscall.Errno, again bool) {
	return rawIO(unix.SYS_WRITE, fd, b)
}

// rawIO makes the read or write system call trap on fd and b, retrying
// when a signal interrupted it.
func rawIO(trap, fd uintptr, b []byte) (n int, errno syscall.Errno, again bool) {
	for {
		m, _, e := unix.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			return int(m), 0, false
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, 0, true
		}
		return 0, e, false
	}
}
