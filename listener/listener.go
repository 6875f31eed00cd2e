// Package listener holds what a Haven server needs from its service
// manager: the sockets systemd passes by socket activation (datagram
// sockets, and stream sockets for the TCP fallback)
// (LISTEN_FDS, named by FileDescriptorName=), and the sd_notify messages
// that report readiness, shutdown and watchdog keep-alives. Sessions,
// channels and named services on a socket are package net's Host.
package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// Socket is one socket passed by systemd: a datagram socket
// (ListenDatagram=: Conn) or a listening stream socket (ListenStream=:
// Listener, for the TCP fallback), never both.
type Socket struct {
	// Name is its FileDescriptorName= (LISTEN_FDNAMES); systemd names
	// unnamed sockets after their unit, e.g. "haven.socket".
	Name     string
	Conn     net.PacketConn
	Listener net.Listener
}

// Close closes the socket.
func (s Socket) Close() error {
	if s.Conn != nil {
		return s.Conn.Close()
	}
	if s.Listener != nil {
		return s.Listener.Close()
	}
	return nil
}

// ErrNotActivated reports that the process was not socket-activated.
var ErrNotActivated = errors.New("listener: no sockets passed by systemd (LISTEN_FDS unset)")

// Activated returns the sockets systemd passed to this process (datagram
// and listening stream sockets), optionally only those whose name is in
// names. It unsets LISTEN_FDS and
// friends, so children do not inherit them. A passed socket that is neither
// kind is an error naming it.
func Activated(names ...string) ([]Socket, error) {
	if os.Getenv("LISTEN_FDS") == "" {
		return nil, ErrNotActivated
	}
	files := activation.Files(true)
	if len(files) == 0 {
		return nil, ErrNotActivated
	}
	var out []Socket
	for _, f := range files {
		name := f.Name()
		if len(names) > 0 && !contains(names, name) {
			f.Close()
			continue
		}
		pc, err := net.FilePacketConn(f)
		if err == nil {
			f.Close() // FilePacketConn duplicated the descriptor
			out = append(out, Socket{Name: name, Conn: pc})
			continue
		}
		ln, lerr := net.FileListener(f)
		f.Close()
		if lerr != nil {
			for _, s := range out {
				s.Close()
			}
			return nil, fmt.Errorf("listener: passed socket %q is neither a datagram socket nor a listening stream socket: %w", name, err)
		}
		out = append(out, Socket{Name: name, Listener: ln})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("listener: no passed socket is named %q", names)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Ready tells systemd the service is serving (READY=1). Without
// NOTIFY_SOCKET it does nothing and reports false.
func Ready() (bool, error) { return daemon.SdNotify(false, daemon.SdNotifyReady) }

// Stopping tells systemd the service is shutting down (STOPPING=1).
func Stopping() (bool, error) { return daemon.SdNotify(false, daemon.SdNotifyStopping) }

// Watchdog sends WATCHDOG=1 every half of WATCHDOG_USEC until ctx ends;
// without a watchdog configured it returns at once. Run it in a goroutine.
func Watchdog(ctx context.Context) error {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil || every == 0 {
		return err
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		if _, err := daemon.SdNotify(false, daemon.SdNotifyWatchdog); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
