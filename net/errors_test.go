package net

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// TestErrorsAreOpErrors: every error a user meets at the net boundary,
// misuse included, is a *net.OpError whose cause a program can test for
// (an exported sentinel with errors.Is, or a type with errors.As), as the
// standard library's net errors are (issue #11).
func TestErrorsAreOpErrors(t *testing.T) {
	ln, err := Listen("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echoServer(ln)
	pc, err := ListenPacket("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	h, err := (&ListenConfig{}).ListenHost(context.Background(), "haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Listen("web"); err != nil {
		t.Fatal(err)
	}
	var d Dialer
	defer d.Close()
	c, err := d.Dial("haven4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sess := c.(*Conn).Session()
	c.Close()
	// A port where nothing answers: a closed socket's.
	gone, err := ListenPacket("haven4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := gone.LocalAddr().String()
	gone.Close()

	var unknownNet net.UnknownNetworkError
	var addrErr *net.AddrError
	var wireAddr *wire.AddressError
	is := func(target error) func(error) bool { return func(e error) bool { return errors.Is(e, target) } }
	for _, tc := range []struct {
		name  string
		call  func() error
		cause func(error) bool
	}{
		{"Dial unknown network", func() error { _, err := Dial("tcp", ln.Addr().String()); return err },
			func(e error) bool { return errors.As(e, &unknownNet) }},
		{"Dial address without key", func() error { _, err := Dial("haven4", "127.0.0.1:1"); return err },
			func(e error) bool { return errors.As(e, &wireAddr) }},
		{"Dial nobody answers", func() error {
			d := &Dialer{Timeout: 300 * time.Millisecond}
			defer d.Close()
			_, err := d.Dial("haven4", silent)
			return err
		}, func(e error) bool {
			var ne net.Error
			return errors.As(e, &ne) && ne.Timeout() && errors.Is(e, context.DeadlineExceeded)
		}},
		{"Listen bad address", func() error { _, err := Listen("haven4", "no-port"); return err },
			func(e error) bool { return errors.As(e, &addrErr) }},
		{"ResolveAddr garbage", func() error { _, err := ResolveAddr("haven", "garbage"); return err },
			func(e error) bool { return errors.As(e, &wireAddr) }},
		{"Read after Close", func() error { _, err := c.Read(make([]byte, 1)); return err }, is(net.ErrClosed)},
		{"Write after Close", func() error { _, err := c.Write([]byte("x")); return err }, is(net.ErrClosed)},
		{"Host.Listen twice", func() error { _, err := h.Listen("web"); return err }, is(ErrServiceTaken)},
		{"WriteTo nil address", func() error { _, err := pc.WriteTo([]byte("x"), nil); return err },
			func(e error) bool { return errors.As(e, &addrErr) }},
		{"WriteTo unparsable address", func() error { _, err := pc.WriteTo([]byte("x"), opAddr("nope")); return err },
			func(e error) bool { return errors.As(e, &wireAddr) }},
		{"WriteTo too large", func() error {
			_, err := pc.WriteTo(make([]byte, wire.MaxDatagramSize+1), ln.Addr())
			return err
		}, is(mux.ErrDatagramSize)},
		{"ReadFrom deadline", func() error {
			pc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			_, _, err := pc.ReadFrom(make([]byte, 10))
			return err
		}, func(e error) bool {
			var ne net.Error
			return errors.Is(e, os.ErrDeadlineExceeded) && errors.As(e, &ne) && ne.Timeout()
		}},
		{"OpenStream on a closed session", func() error {
			sess.Close(0, "done")
			_, err := sess.OpenStream("", 3)
			return err
		}, func(e error) bool { return errors.Is(e, mux.ErrSessionClosed) || errors.As(e, new(*mux.CloseError)) }},
		{"Listener closed twice", func() error {
			l2, err := Listen("haven4", "127.0.0.1:0")
			if err != nil {
				return err
			}
			l2.Close()
			return l2.Close()
		}, is(net.ErrClosed)},
	} {
		err := tc.call()
		var oe *net.OpError
		if !errors.As(err, &oe) {
			t.Errorf("%s: %T %v, want a *net.OpError", tc.name, err, err)
			continue
		}
		if errors.As(oe.Err, new(*net.OpError)) {
			t.Errorf("%s: %v: a *net.OpError inside a *net.OpError", tc.name, err)
		}
		if !tc.cause(err) || strings.TrimSpace(err.Error()) == "" {
			t.Errorf("%s: cause %T %v is not the typed cause expected", tc.name, oe.Err, err)
		}
	}
}
