package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/havenproto/haven/mux"
	"github.com/havenproto/haven/wire"
)

// halfCloser is a connection with half-close: a Haven stream channel or
// a *net.TCPConn.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// pipe copies a to b and b to a, passing each end of stream on as a
// half-close, and returns when both directions have ended. An error in
// either direction closes both connections at once (so the other copy
// ends too) and is returned. Both connections are closed on return.
func pipe(a, b halfCloser) error {
	a, b = rawTCPConn(a), rawTCPConn(b) // TCP ends copy by raw system calls
	errc := make(chan error, 2)
	copyHalf := func(dst, src halfCloser) {
		_, err := io.Copy(dst, src)
		if err == nil {
			err = dst.CloseWrite()
		}
		errc <- err
	}
	go copyHalf(a, b)
	go copyHalf(b, a)
	err := <-errc
	if err != nil {
		a.Close()
		b.Close()
		<-errc
		return err
	}
	err = <-errc
	a.Close()
	b.Close()
	return err
}

// isClosed reports whether err is only the end of a connection that was
// closed on purpose: by us, or by a peer that closed its session normally.
func isClosed(err error) bool {
	var ce *mux.CloseError
	return err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.As(err, &ce) && ce.Remote && ce.Code == wire.CloseNormal
}

// parseSize reads a byte count: a whole number with an optional suffix
// k, M, G (powers of 1,000) or KiB, MiB, GiB (powers of 1,024), B optional.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
		{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1},
	} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1000000, 64MiB or 1G)", s)
	}
	return n * mult, nil
}

// sizeFlag is a flag.Value for parseSize.
type sizeFlag int64

func (f *sizeFlag) String() string { return strconv.FormatInt(int64(*f), 10) }
func (f *sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return errors.New("want a byte count such as 1000000, 64MiB or 1G")
	}
	*f = sizeFlag(n)
	return nil
}

// addrsFlag is a flag.Value for a list of "ip:port" addresses, from
// repeated flags, each of which may also hold a comma-separated list.
type addrsFlag []netip.AddrPort

func (f *addrsFlag) String() string {
	s := make([]string, len(*f))
	for i, a := range *f {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func (f *addrsFlag) Set(v string) error {
	for _, one := range strings.Split(v, ",") {
		a, err := netip.ParseAddrPort(strings.TrimSpace(one))
		if err != nil {
			return fmt.Errorf("want IP:PORT (port 0: any), not %q", one)
		}
		*f = append(*f, a)
	}
	return nil
}

// bytesText formats n bytes in binary units: "64.0 MiB".
func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// mbps returns n bytes over d in MB/s (10^6 bytes per second).
func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds() / 1e6
}

// ms formats a duration in milliseconds: "0.412 ms".
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// seconds formats a duration in seconds: "1.25 s".
func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// percentiles returns the p50 and p99 of samples (nearest rank), sorting
// them; zero for none.
func percentiles(samples []time.Duration) (p50, p99 time.Duration) {
	if len(samples) == 0 {
		return 0, 0
	}
	slices.Sort(samples)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(samples))+0.999999) - 1
		return samples[max(0, min(i, len(samples)-1))]
	}
	return rank(0.50), rank(0.99)
}
