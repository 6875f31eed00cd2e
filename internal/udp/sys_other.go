//go:build !linux

package udp

import "net"

// sysConn is the direct path, which exists on Linux only: elsewhere every
// socket takes the generic path through net.PacketConn.
type sysConn struct{}

func newSysConn(*net.UDPConn, Options, *Caps) (*sysConn, error) { return nil, nil }

func (*sysConn) read(*Conn, []Message, Lender) (int, error) { panic("udp: no direct path") }
func (*sysConn) write(*Conn, []Message) (int, error)        { panic("udp: no direct path") }
