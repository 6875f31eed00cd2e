package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	hnet "github.com/havenproto/haven/net"
)

// The control socket of haven serve (-control PATH) and haven show, which
// reads it, as wg show reads WireGuard's (issue #16): a unix socket,
// owner-only, that answers one line ("show", or "show KEY-PREFIX") with a
// listing of the server's live sessions, then closes.

const showAbout = `Lists the sessions of a running haven serve through its control socket
(haven serve -control PATH): each peer's key, address and transport, round
trip, congestion window, bytes and packets each way, losses, channels open,
the latest handshake and key updates; with KEY-PREFIX, only the sessions whose peer key starts
with it, with their paths. A KEY-PREFIX that begins with '-' (one key in 64
does) goes after "--", or it is taken for a flag:
  haven show -control PATH -- -Ab3`

func cmdShow(ctx context.Context, args []string, std stdio) error {
	c := newCommand("show", "show -control PATH [KEY-PREFIX]", showAbout)
	control := c.String("control", "", "the server's control socket `PATH` (haven serve -control)")
	if err := c.parse(args, -1, std.out); err != nil {
		return err
	}
	if *control == "" || c.NArg() > 1 {
		return usagef("show: -control PATH is required, and at most one KEY-PREFIX")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", *control)
	if err != nil {
		return fmt.Errorf("show: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "show %s\n", c.Arg(0))
	_, err = io.Copy(std.out, conn)
	return err
}

// serveControl answers the control socket at path; the function it
// returns stops it and removes the socket.
func serveControl(path string, hosts []*hnet.Host, log io.Writer) (func(), error) {
	os.Remove(path) // a socket left by a server that died
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // owner only: it lists every peer
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					fmt.Fprintf(log, "haven: control socket: %v\n", oneLine(err.Error()))
				}
				return
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			cmd, prefix, _ := strings.Cut(strings.TrimSpace(line), " ")
			if cmd == "show" {
				writeSessions(conn, hosts, strings.TrimSpace(prefix))
			} else {
				fmt.Fprintf(conn, "unknown command %q\n", cmd)
			}
			conn.Close()
		}
	}()
	return func() { ln.Close(); <-done; os.Remove(path) }, nil
}

// writeSessions lists the hosts' sessions, those of peers whose key starts
// with prefix when it is set (with their paths then).
func writeSessions(w io.Writer, hosts []*hnet.Host, prefix string) {
	for _, h := range hosts {
		fmt.Fprintf(w, "host %s\n", h.Addr())
		for _, s := range h.Sessions() {
			key := s.Peer().String()
			if !strings.HasPrefix(key, prefix) {
				continue
			}
			st := s.Stats()
			fmt.Fprintf(w, "\npeer %s\n", key)
			fmt.Fprintf(w, "  endpoint: %s (%s)\n", s.RemoteAddr().Addr, s.Transport())
			fmt.Fprintf(w, "  rtt: %v smoothed, %v min; congestion window: %d bytes, %d in flight\n",
				st.SmoothedRTT.Round(time.Microsecond), st.MinRTT.Round(time.Microsecond), st.CongestionWindow, st.BytesInFlight)
			fmt.Fprintf(w, "  transfer: %d bytes (%d packets) sent, %d bytes (%d packets) received; %d packets lost\n",
				st.BytesSent, st.PacketsSent, st.BytesReceived, st.PacketsReceived, st.PacketsLost)
			fmt.Fprintf(w, "  channels: %d open, %d opened; latest handshake: %v ago, key updates: %d\n",
				s.Channels(), st.ChannelsOpened, time.Since(s.LastHandshake()).Round(time.Second), s.KeyUpdates())
			if prefix != "" {
				for _, p := range s.Paths() {
					fmt.Fprintf(w, "  path %s -> %s (%s): %s, rtt %v, %d bytes sent\n", p.Local, p.Remote, p.Transport, p.State,
						p.RTT.Round(time.Microsecond), p.BytesSent)
				}
			}
		}
	}
}
