package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/havenproto/haven/listener"
	hnet "github.com/havenproto/haven/net"
)

const serveAbout = `Serves the default service "" on every socket: with -echo each stream channel
is echoed back (and each datagram on the default datagram service), with
-discard it is read and dropped, with -forward it is connected to a TCP target.

When LISTEN_FDS is set (systemd socket activation) every datagram socket systemd
passes is served and -listen is ignored. For each socket haven logs
"listening on <key>@<ip>:<port>" to stderr, the address clients dial, then
reports READY=1 to systemd (and WATCHDOG=1 when WatchdogSec= is set). On
SIGTERM or SIGINT it reports STOPPING=1 and closes every session with the code
"server restarting", so that clients reconnect when it is back.

With -authorized-keys FILE only the clients whose public keys FILE lists get a
session: one key per line, as haven pubkey prints it, with blank lines and
# comments allowed (like ssh's authorized_keys). Any other key gets no session
and no reply to its handshakes, except the cookie replies that a sender who
knows the server's public key can provoke (docs/PROTOCOL.md §7.7). On SIGHUP
haven reads FILE again: keys added are admitted, and sessions of keys removed
are closed ("server shutting down: key no longer authorized"); other sessions
go on. If FILE cannot be read or has a malformed line, the old list stays in
force and the error is logged. Clients choose their key with haven cat -key
(and forward -key, bench -key).

The key file must not be readable or writable by group or others (chmod 600),
and the authorized keys file must not be writable by them.
`

// shutdownWait bounds how long serve waits for its channel handlers after
// closing its sessions.
const shutdownWait = 2 * time.Second

// serveMode is what serve does with each channel.
type serveMode struct {
	echo, discard bool
	forward       string // TCP target, "host:port"
}

func cmdServe(ctx context.Context, args []string, std stdio) error {
	c := newCommand("serve", "serve -key FILE [-listen ADDR] [-authorized-keys FILE] [-advertise IP:PORT ...] [-control PATH] (-echo | -discard | -forward HOST:PORT)", serveAbout)
	keyPath := c.String("key", "", "the server's private key `FILE` (from haven genkey; mode 0600)")
	listen := c.String("listen", ":"+defaultPort, "UDP `ADDR` to listen on, [host]:port, when not socket-activated")
	authKeys := c.String("authorized-keys", "", "admit only the client keys listed in `FILE` (re-read on SIGHUP)")
	var advertise addrsFlag
	c.Var(&advertise, "advertise", "another `IP:PORT` the server is reachable at, told to every client, which keeps a backup path to it (repeatable, or comma-separated)")
	control := c.String("control", "", "answer haven show on the unix socket `PATH` (made owner-only)")
	var mode serveMode
	c.BoolVar(&mode.echo, "echo", false, "echo each stream channel, and each datagram, back to its sender")
	c.BoolVar(&mode.discard, "discard", false, "read each stream channel and drop what arrives")
	c.StringVar(&mode.forward, "forward", "", "connect each stream channel to the TCP address `HOST:PORT`")
	if err := c.parse(args, 0, std.out); err != nil {
		return err
	}
	if *keyPath == "" {
		return usagef("serve: -key FILE is required (make one with: umask 077; haven genkey > server.key)")
	}
	modes := 0
	for _, on := range []bool{mode.echo, mode.discard, mode.forward != ""} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		return usagef("serve: give exactly one of -echo, -discard and -forward HOST:PORT")
	}
	if mode.forward != "" {
		if host, port, err := net.SplitHostPort(mode.forward); err != nil || host == "" || port == "" {
			return usagef("serve: -forward %q: want HOST:PORT", mode.forward)
		}
	}
	key, err := readKeyFile(*keyPath)
	if err != nil {
		return err
	}
	cfg := hnet.Config{PrivateKey: key, Advertise: advertise}
	var auth *authorizer
	if *authKeys != "" {
		if auth, err = newAuthorizer(*authKeys); err != nil {
			return err
		}
		cfg.Authorize = auth.allows
	}

	// Catch the signals before announcing anything, so that a SIGTERM right
	// after READY=1 is a clean shutdown too. SIGHUP (systemctl reload) is
	// caught even without -authorized-keys, so that a reload never kills
	// the server.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigc)
	hupc := make(chan os.Signal, 1)
	signal.Notify(hupc, syscall.SIGHUP)
	defer signal.Stop(hupc)

	hosts, err := openHosts(ctx, cfg, *listen, c.isSet("listen"), std.err)
	if err != nil {
		return err
	}
	s := &server{mode: mode, log: std.err}
	for _, h := range hosts {
		if err := s.start(h); err != nil {
			for _, h := range hosts {
				h.Close()
			}
			return err
		}
	}
	for _, h := range hosts {
		fmt.Fprintf(std.err, "listening on %s\n", h.Addr())
	}
	if *control != "" {
		stopControl, err := serveControl(*control, hosts, std.err)
		if err != nil {
			for _, h := range hosts {
				h.Close()
			}
			return err
		}
		defer stopControl()
		fmt.Fprintf(std.err, "control socket %s\n", *control)
	}
	if auth != nil {
		fmt.Fprintf(std.err, "authorized keys: %d from %s\n", auth.count(), auth.path)
	}
	if _, err := listener.Ready(); err != nil {
		fmt.Fprintf(std.err, "haven: sd_notify READY=1: %v\n", oneLine(err.Error()))
	}
	wdCtx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go func() {
		if err := listener.Watchdog(wdCtx); err != nil {
			fmt.Fprintf(std.err, "haven: sd_notify WATCHDOG=1: %v\n", oneLine(err.Error()))
		}
	}()

wait:
	for {
		select {
		case sig := <-sigc:
			fmt.Fprintf(std.err, "received %v; closing sessions (clients are told: server restarting)\n", sig)
			break wait
		case <-ctx.Done():
			fmt.Fprintf(std.err, "stopping; closing sessions (clients are told: server restarting)\n")
			break wait
		case <-hupc:
			reloadKeys(auth, hosts, std.err)
		}
	}
	stopWatchdog()
	if _, err := listener.Stopping(); err != nil {
		fmt.Fprintf(std.err, "haven: sd_notify STOPPING=1: %v\n", oneLine(err.Error()))
	}
	s.stopping.Store(true)
	for _, h := range hosts {
		// Shutdown sends each session's CLOSE before it closes the socket.
		h.Shutdown(hnet.CloseRestarting, "server restarting")
	}
	if !waitTimeout(&s.wg, shutdownWait) {
		fmt.Fprintf(std.err, "some channels did not end within %v; exiting anyway\n", shutdownWait)
	}
	fmt.Fprintln(std.err, "stopped")
	return nil
}

// reloadKeys applies SIGHUP: it reads the authorized keys file again and
// closes the sessions of keys no longer listed, or, if the file cannot be
// used, logs why and keeps the keys in force.
func reloadKeys(auth *authorizer, hosts []*hnet.Host, log io.Writer) {
	if auth == nil {
		fmt.Fprintln(log, "received hangup; no -authorized-keys file to reload")
		return
	}
	n, err := auth.reload()
	if err != nil {
		fmt.Fprintf(log, "haven: reloading authorized keys: %v; keeping the %d keys in force\n", oneLine(err.Error()), auth.count())
		return
	}
	// The new keys are in force for every handshake from now on; what was
	// admitted under the old ones and is no longer listed is closed.
	closed := 0
	for _, h := range hosts {
		closed += h.CloseSessions(func(k hnet.PublicKey) bool { return !auth.allows(k) },
			hnet.CloseShuttingDown, "key no longer authorized")
	}
	fmt.Fprintf(log, "reloaded authorized keys: %d from %s; closed %d sessions of removed keys\n", n, auth.path, closed)
}

// openHosts returns a Host for every socket systemd passed, or else one
// bound to listen.
func openHosts(ctx context.Context, cfg hnet.Config, listen string, listenSet bool, log io.Writer) ([]*hnet.Host, error) {
	socks, err := listener.Activated()
	if errors.Is(err, listener.ErrNotActivated) {
		lc := hnet.ListenConfig{Config: cfg}
		h, err := lc.ListenHost(ctx, "haven", listen)
		if err != nil {
			return nil, err
		}
		return []*hnet.Host{h}, nil
	}
	if err != nil {
		return nil, err
	}
	if listenSet {
		fmt.Fprintf(log, "socket-activated: ignoring -listen %s\n", listen)
	}
	// A Host per datagram socket; each stream socket (ListenStream=, the
	// TCP fallback) joins the Host of the datagram socket with its name,
	// or the first Host.
	var hosts []*hnet.Host
	byName := map[string]*hnet.Host{}
	fail := func(i int, err error) ([]*hnet.Host, error) {
		for _, h := range hosts {
			h.Close()
		}
		for _, sk := range socks[i:] {
			sk.Close()
		}
		return nil, fmt.Errorf("socket %q from systemd: %w", socks[i].Name, err)
	}
	for i, sk := range socks {
		if sk.Conn == nil {
			continue
		}
		h, err := hnet.NewHost(sk.Conn, cfg)
		if err != nil {
			socks[i].Conn = nil // NewHost closed it
			return fail(i, err)
		}
		hosts = append(hosts, h)
		if byName[sk.Name] == nil {
			byName[sk.Name] = h
		}
	}
	for i, sk := range socks {
		if sk.Listener == nil {
			continue
		}
		h := byName[sk.Name]
		if h == nil && len(hosts) > 0 {
			h = hosts[0]
		}
		if h == nil {
			return fail(i, errors.New("a stream socket without a datagram socket to serve beside"))
		}
		if err := h.ServeTCP(sk.Listener); err != nil {
			socks[i].Listener = nil // ServeTCP closed it
			return fail(i, err)
		}
		fmt.Fprintf(log, "TCP fallback on %v (socket %q)\n", sk.Listener.Addr(), sk.Name)
	}
	return hosts, nil
}

// server runs the channel handlers of every Host.
type server struct {
	mode     serveMode
	log      io.Writer
	wg       sync.WaitGroup
	stopping atomic.Bool
}

// start begins serving h: stream channels on the default service, and in
// echo mode datagrams on the default datagram service too.
func (s *server) start(h *hnet.Host) error {
	ln, err := h.Listen("")
	if err != nil {
		return err
	}
	var pc net.PacketConn
	if s.mode.echo {
		if pc, err = h.ListenPacket(""); err != nil {
			ln.Close()
			return err
		}
	}
	s.wg.Add(1)
	go s.acceptLoop(ln)
	if pc != nil {
		s.wg.Add(1)
		go s.echoDatagrams(pc)
	}
	return nil
}

func (s *server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !s.stopping.Load() && !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(s.log, "haven: accept: %v\n", oneLine(err.Error()))
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c.(halfCloser))
		}()
	}
}

// handle serves one stream channel.
func (s *server) handle(c halfCloser) {
	defer c.Close()
	var err error
	switch {
	case s.mode.echo:
		if _, err = io.Copy(c, c); err == nil {
			err = c.CloseWrite()
		}
	case s.mode.discard:
		if _, err = io.Copy(io.Discard, c); err == nil {
			err = c.CloseWrite()
		}
	default:
		var tc net.Conn
		tc, err = net.DialTimeout("tcp", s.mode.forward, 10*time.Second)
		if err != nil {
			fmt.Fprintf(s.log, "haven: channel from %s: forward: %v\n", c.RemoteAddr(), oneLine(err.Error()))
			return
		}
		err = pipe(c, tc.(halfCloser))
	}
	if err != nil && !isClosed(err) && !s.stopping.Load() {
		fmt.Fprintf(s.log, "haven: channel from %s: %v\n", c.RemoteAddr(), oneLine(err.Error()))
	}
}

// echoDatagrams sends every datagram back to its sender.
func (s *server) echoDatagrams(pc net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return // the Host is shutting down
		}
		if _, err := pc.WriteTo(buf[:n], from); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}
