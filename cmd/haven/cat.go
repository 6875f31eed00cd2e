package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	hnet "github.com/havenproto/haven/net"
	"github.com/havenproto/haven/wire"
)

const catAbout = `Opens a stream channel to ADDR ("<public key>@<host>:<port>") and copies stdin
to it and it to stdout at the same time. At the end of stdin the channel is
half-closed (like nc -N), and haven cat exits once the server has ended its
side too: status 0 on a clean end, 1 with a one-line error otherwise.
`

// localAddrsHelp documents the clients' -local flag.
const localAddrsHelp = "a local `IP:PORT` to send from (port 0: any; repeat it, or give a comma-separated list, for a path from each, used together)"

// backupPathsHelp describes -backup-paths (net.Dialer.BackupPaths).
const backupPathsHelp = "keep the paths from the second -local address on for when the first fails, instead of using them together"

// dialTimeoutDefault bounds a client's handshake and channel open: the
// library's own default, a minute of retries on a bad path (issue #11;
// docs/PROTOCOL.md §7.6), so the command line gives up no sooner.
const dialTimeoutDefault = 60 * time.Second

func cmdCat(ctx context.Context, args []string, std stdio) error {
	c := newCommand("cat", "cat [-key FILE] [-cipher NAME] [-service NAME] [-timeout DURATION] [-local IP:PORT ...] [-backup-paths] ADDR", catAbout)
	keyPath := c.String("key", "", "the client's private key `FILE` (mode 0600), for servers that list it in -authorized-keys (default: a fresh key)")
	cipher := cipherFlag(c)
	service := c.String("service", "", "the service `NAME` to open the channel to (default: the default service)")
	timeout := c.Duration("timeout", dialTimeoutDefault, "bound on the handshake and channel open")
	var locals addrsFlag
	c.Var(&locals, "local", localAddrsHelp)
	backup := c.Bool("backup-paths", false, backupPathsHelp)
	if err := c.parse(args, 1, std.out); err != nil {
		return err
	}
	addr := c.Arg(0)
	cfg, err := clientConfig(*keyPath, *cipher)
	if err != nil {
		return err
	}
	d := &hnet.Dialer{Config: cfg, Timeout: *timeout, Service: *service, LocalAddrs: locals, BackupPaths: *backup}
	defer d.Close()
	conn, err := dial(ctx, d, addr, *timeout)
	if err != nil {
		return err
	}
	defer conn.Close()

	up := make(chan error, 1)
	down := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, std.in)
		if err == nil {
			err = conn.CloseWrite()
		}
		up <- err
	}()
	go func() {
		_, err := io.Copy(std.out, conn)
		down <- err
	}()
	// Both directions must end; an error in either ends the command (a
	// blocked read of stdin is abandoned when the process exits).
	for pending := 2; pending > 0; pending-- {
		select {
		case err := <-up:
			if err != nil {
				return fmt.Errorf("sending: %w", err)
			}
		case err := <-down:
			if err != nil {
				return fmt.Errorf("receiving: %w", err)
			}
		}
	}
	return nil
}

// dial opens a stream channel to addr with d, turning a handshake that got
// no answer into an error saying what to check.
func dial(ctx context.Context, d *hnet.Dialer, addr string, timeout time.Duration) (halfCloser, error) {
	return dialOn(ctx, d, "haven", addr, timeout)
}

// dialOn is dial on network: "haven" (UDP, falling back to TCP) or
// "haven+tcp" and its forms (TCP only).
func dialOn(ctx context.Context, d *hnet.Dialer, network, addr string, timeout time.Duration) (halfCloser, error) {
	if _, err := resolve(addr); err != nil {
		return nil, err
	}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("dial %s: no answer within %v (is the server running, is the key the server's, and does it admit this client's key?)", addr, timeout)
		}
		return nil, err
	}
	return c.(*hnet.Conn), nil
}

// resolve parses and resolves a Haven address, with an error that names it
// once.
func resolve(addr string) (*hnet.Addr, error) {
	a, err := hnet.ResolveAddr("haven", addr)
	var ae *wire.AddressError
	switch {
	case errors.As(err, &ae):
		return nil, errors.New(strings.TrimPrefix(err.Error(), "wire: "))
	case err != nil:
		return nil, fmt.Errorf("address %s: %v", addr, err)
	}
	return a, nil
}
