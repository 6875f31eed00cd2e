package net

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/havenproto/haven/mux"
)

// TestSessionOpenDatagram: one session carries a stream channel and a
// datagram channel (one handshake): the datagrams reach the server's
// datagram service from the same peer key, the server's replies with
// WriteTo come back on the DatagramConn, and a channel to a service the
// server does not serve fails on Read with the refusal. Errors are
// *net.OpError.
func TestSessionOpenDatagram(t *testing.T) {
	h, _, telemetry := hostWithServices(t, "")
	go func() { // echo every datagram back, upper-cased
		buf := make([]byte, 2048)
		for {
			n, from, err := telemetry.ReadFrom(buf)
			if err != nil {
				return
			}
			for i := range buf[:n] {
				if 'a' <= buf[i] && buf[i] <= 'z' {
					buf[i] -= 'a' - 'A'
				}
			}
			telemetry.WriteTo(buf[:n], from)
		}
	}()

	var d Dialer
	defer d.Close()
	c, err := d.Dial("haven4", h.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "stream first")
	sess := c.(*Conn).Session()
	dg, err := sess.OpenDatagram("telemetry", 1)
	if err != nil {
		t.Fatal(err)
	}
	var _ net.Conn = dg
	buf := make([]byte, 2048)
	got := 0
	for i := 0; i < 50 && got < 10; i++ {
		if _, err := dg.Write([]byte("cpu=3%")); err != nil {
			t.Fatal(err)
		}
		dg.SetReadDeadline(time.Now().Add(time.Second))
		n, err := dg.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue // lost: datagrams are unreliable
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != "CPU=3%" {
			t.Fatalf("reply %q", buf[:n])
		}
		got++
	}
	if got < 10 {
		t.Fatalf("%d replies of 10", got)
	}
	if dg.Session().Peer() != sess.Peer() || dg.RemoteAddr().String() != c.RemoteAddr().String() {
		t.Fatalf("datagram channel on another session: %v vs %v", dg.RemoteAddr(), c.RemoteAddr())
	}
	if st := sess.Stats(); st.DatagramsSent < 10 || st.ChannelsOpened < 2 {
		t.Fatalf("the stream's session did not carry the datagrams: %+v", st)
	}
	if _, err := dg.WriteTo([]byte("x"), c.LocalAddr()); err == nil {
		t.Fatal("WriteTo another peer than the session's succeeded")
	}

	// A service nobody serves: the refusal shows on Read.
	bad, err := sess.OpenDatagram("nope", 3)
	if err != nil {
		t.Fatal(err)
	}
	bad.Write([]byte("anyone?"))
	bad.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = bad.Read(buf)
	var oe *net.OpError
	var ce *mux.ChannelError
	if !errors.As(err, &oe) || !errors.As(err, &ce) || !ce.Refused {
		t.Fatalf("Read on a refused channel: %v, want a *net.OpError wrapping the refusal", err)
	}
	bad.Close()

	// Close: blocked and later calls fail with net.ErrClosed; the session
	// and its stream live on.
	done := make(chan error, 1)
	go func() {
		dg.SetReadDeadline(time.Time{})
		_, err := dg.Read(buf)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := dg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) {
		t.Fatalf("blocked Read after Close: %v", err)
	}
	if _, err := dg.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	roundTrip(t, c, "stream still works")
}
