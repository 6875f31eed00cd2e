package main

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// rawTCP is a TCP connection whose Read and Write make their system calls
// raw (rawRead, rawWrite: RawSyscall on the non-blocking socket, the
// runtime's poller doing the waiting, deadlines included), for the copy
// loops of haven forward and serve -forward. A Syscall would tell the
// runtime the thread may block, which on this project's test host woke
// the runtime's monitor thread thousands of times a second and handed Ps
// between threads; see internal/udp's note on its batch calls. Only Read,
// Write and the net.Conn methods are offered: no WriteTo or ReadFrom, so
// io.Copy goes through Read and Write (an embedded *net.TCPConn's WriteTo
// would bypass them).
type rawTCP struct {
	c  *net.TCPConn
	rc syscall.RawConn
}

// rawTCPConn returns c with raw system calls where the platform has them
// (Linux), else c itself.
func rawTCPConn(c halfCloser) halfCloser {
	t, ok := c.(*net.TCPConn)
	if !ok || !haveRawIO {
		return c
	}
	rc, err := t.SyscallConn()
	if err != nil {
		return c
	}
	return &rawTCP{c: t, rc: rc}
}

func (r *rawTCP) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		var again bool
		n, errno, again = rawRead(fd, b)
		return !again
	})
	switch {
	case err != nil:
		return 0, r.opError("read", err)
	case errno != 0:
		return 0, r.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawTCP) Write(b []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e, again := rawWrite(fd, b[n:])
			if again {
				return false // the poller waits for room
			}
			if e != 0 {
				errno = e
				return true
			}
			n += m
		}
		return true
	})
	switch {
	case err != nil:
		return n, r.opError("write", err)
	case errno != 0:
		return n, r.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// opError is what net.TCPConn returns for err; an error RawConn returned
// is such an *net.OpError already (closed, deadline) and passes through.
func (r *rawTCP) opError(op string, err error) error {
	if _, ok := err.(*net.OpError); ok {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: err}
}

func (r *rawTCP) Close() error                       { return r.c.Close() }
func (r *rawTCP) CloseWrite() error                  { return r.c.CloseWrite() }
func (r *rawTCP) LocalAddr() net.Addr                { return r.c.LocalAddr() }
func (r *rawTCP) RemoteAddr() net.Addr               { return r.c.RemoteAddr() }
func (r *rawTCP) SetDeadline(t time.Time) error      { return r.c.SetDeadline(t) }
func (r *rawTCP) SetReadDeadline(t time.Time) error  { return r.c.SetReadDeadline(t) }
func (r *rawTCP) SetWriteDeadline(t time.Time) error { return r.c.SetWriteDeadline(t) }
