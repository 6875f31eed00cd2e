package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	hnet "github.com/havenproto/haven/net"
)

const forwardAbout = `Like ssh -L: listens on a local TCP port and, for each TCP connection, opens a
stream channel to ADDR ("<public key>@<host>:<port>", a server running
haven serve -forward HOST:PORT) and copies both ways, passing each half-close
on. All connections share one session with the server: one handshake.

-L takes PORT (bound on 127.0.0.1), BINDHOST:PORT, or :PORT / *:PORT for every
interface. Port 0 picks a free port; the address is logged to stderr as
"forwarding tcp <ip>:<port> to <ADDR>".
`

func cmdForward(ctx context.Context, args []string, std stdio) error {
	c := newCommand("forward", "forward -L [BINDHOST:]PORT [-key FILE] [-cipher NAME] [-service NAME] [-timeout DURATION] [-local IP:PORT ...] [-backup-paths] ADDR", forwardAbout)
	keyPath := c.String("key", "", "the client's private key `FILE` (mode 0600), for servers that list it in -authorized-keys (default: a fresh key)")
	cipher := cipherFlag(c)
	local := c.String("L", "", "the local TCP address to listen on: [`BINDHOST:]PORT`")
	service := c.String("service", "", "the service `NAME` to open channels to (default: the default service)")
	timeout := c.Duration("timeout", dialTimeoutDefault, "bound on the handshake and each channel open")
	var locals addrsFlag
	c.Var(&locals, "local", localAddrsHelp)
	backup := c.Bool("backup-paths", false, backupPathsHelp)
	if err := c.parse(args, 1, std.out); err != nil {
		return err
	}
	if *local == "" {
		return usagef("forward: -L [BINDHOST:]PORT is required")
	}
	bind, err := localAddr(*local)
	if err != nil {
		return usagef("forward: -L %q: %v", *local, err)
	}
	addr := c.Arg(0)
	if _, err := resolve(addr); err != nil {
		return err
	}
	cfg, err := clientConfig(*keyPath, *cipher)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return err
	}
	defer ln.Close()
	d := &hnet.Dialer{Config: cfg, Timeout: *timeout, Service: *service, LocalAddrs: locals, BackupPaths: *backup}
	defer d.Close()

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigc)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		select {
		case sig := <-sigc:
			fmt.Fprintf(std.err, "received %v; stopping\n", sig)
		case <-ctx.Done():
		case <-quit:
		}
		ln.Close() // ends the accept loop
	}()
	fmt.Fprintf(std.err, "forwarding tcp %s to %s\n", ln.Addr(), addr)

	var wg sync.WaitGroup
	for {
		tc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				// Closing the session ends the forwarded connections.
				d.Close()
				waitTimeout(&wg, shutdownWait)
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of descriptors and the like: wait a little, as
			// net/http does, rather than spin.
			fmt.Fprintf(std.err, "haven: accept: %v\n", oneLine(err.Error()))
			time.Sleep(100 * time.Millisecond)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tc.Close()
			ch, err := dial(ctx, d, addr, *timeout)
			if err != nil {
				fmt.Fprintf(std.err, "haven: connection from %s: %v\n", tc.RemoteAddr(), oneLine(err.Error()))
				return
			}
			if err := pipe(tc.(halfCloser), ch); !isClosed(err) {
				fmt.Fprintf(std.err, "haven: connection from %s: %v\n", tc.RemoteAddr(), oneLine(err.Error()))
			}
		}()
	}
}

// localAddr turns -L's [BINDHOST:]PORT into a TCP listening address: a bare
// port is bound on loopback, as ssh does; an empty host or "*" is every
// interface.
func localAddr(s string) (string, error) {
	host, port := "127.0.0.1", s
	if strings.Contains(s, ":") {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", errors.New("want [BINDHOST:]PORT")
		}
		if host == "*" {
			host = ""
		}
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", errors.New("want [BINDHOST:]PORT with a numeric port")
	}
	return net.JoinHostPort(host, port), nil
}

// waitTimeout waits for wg, at most d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
