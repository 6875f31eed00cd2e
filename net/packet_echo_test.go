package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

// echoSize is the size of the i-th of n datagrams of the UDP-style echo:
// from 1 byte up to the largest datagram, evenly spread.
func echoSize(i, n int) int { return 1 + i*(wire.MaxDatagramSize-1)/(n-1) }

// TestPacketConnEchoLikeUDP is the echo a user writes for UDP, with the
// default Config on both ends: the client writes 300 datagrams (1 B …
// 65,507 B) with WriteTo before it reads any, and the server echoes each
// with WriteTo as it reads it. Neither WriteTo may wait for the other
// side's application (issue #11: it used to deadlock in DatagramChannel.Send
// waiting for credit), and on loopback at least 95 % of the datagrams come
// back whole and intact.
func TestPacketConnEchoLikeUDP(t *testing.T) {
	client, server := packetPair(t)
	const total = 300
	var wg sync.WaitGroup
	echoErr := make(chan error, 1)
	wg.Add(1)
	go func() { // the server: read, echo, as UDP code does
		defer wg.Done()
		buf := make([]byte, 70_000)
		for {
			n, from, err := server.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					echoErr <- err
				}
				return
			}
			// A generous deadline only so that a regression fails the test
			// instead of hanging it: WriteTo must not wait for the client.
			server.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := server.WriteTo(buf[:n], from); err != nil {
				echoErr <- err
				return
			}
		}
	}()
	defer wg.Wait()
	defer server.Close()

	client.SetWriteDeadline(time.Now().Add(20 * time.Second))
	for i := 0; i < total; i++ {
		if _, err := client.WriteTo(payload(echoSize(i, total), i), server.LocalAddr()); err != nil {
			t.Fatalf("WriteTo %d (%d bytes): %v", i, echoSize(i, total), err)
		}
	}
	got := make([]bool, total)
	n := 0
	buf := make([]byte, 70_000)
	for n < total {
		// The read ends when nothing has come for a while: the rest was
		// dropped (that is allowed, within the 5 %).
		client.SetReadDeadline(time.Now().Add(3 * time.Second))
		k, from, err := client.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("ReadFrom after %d echoes: %v", n, err)
		}
		if from.String() != server.LocalAddr().String() {
			t.Fatalf("echo from %v, want %v", from, server.LocalAddr())
		}
		i := -1
		if k >= 4 {
			i = int(buf[3])
			for i < total && echoSize(i, total) != k {
				i += 256 // the seed byte is the index mod 256
			}
		} else {
			i = 0 // the only datagram shorter than 4 bytes is the first
		}
		if i < 0 || i >= total || echoSize(i, total) != k || !bytes.Equal(buf[:k], payload(k, i)) {
			t.Fatalf("echo of %d bytes matches no datagram sent", k)
		}
		if got[i] {
			t.Fatalf("datagram %d echoed twice", i)
		}
		got[i] = true
		n++
	}
	select {
	case err := <-echoErr:
		t.Fatalf("server: %v", err)
	default:
	}
	t.Logf("%d of %d datagrams echoed intact; client %+v, server %+v", n, total,
		client.(*PacketConn).Stats(), server.(*PacketConn).Stats())
	if n < total*95/100 {
		t.Fatalf("%d of %d datagrams echoed: want at least 95 %%", n, total)
	}
}

// TestPacketConnNobodyReads: both ends write and neither reads, the case
// where waiting for the peer's reader deadlocks. Every WriteTo returns (no
// deadline is set), what the receivers had no room for is dropped and
// counted by the senders (Unsent), and what the receivers buffered is read
// afterwards as whole, intact datagrams. The volume (2 × 600 datagrams
// of 64 KiB) is well above the default 16 MiB receive buffer.
func TestPacketConnNobodyReads(t *testing.T) {
	a, b := packetPair(t)
	const total = 600
	size := wire.MaxDatagramSize
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, w := range []struct{ from, to net.PacketConn }{{a, b}, {b, a}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < total; i++ {
				if _, err := w.from.WriteTo(numbered(size, i), w.to.LocalAddr()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("WriteTo: %v", err)
	}
	for _, pc := range []net.PacketConn{a, b} {
		buf := make([]byte, 70_000)
		seen := make(map[int]bool)
		for {
			pc.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, _, err := pc.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			i := int(binary.LittleEndian.Uint16(buf[4:]))
			if k != size || i >= total || seen[i] || !bytes.Equal(buf[:k], numbered(size, i)) {
				t.Fatalf("read %d bytes: not a whole datagram sent once", k)
			}
			seen[i] = true
		}
		peer := b
		if pc == b {
			peer = a
		}
		st := peer.(*PacketConn).Stats()
		t.Logf("%v received %d of %d; sender %+v", pc.LocalAddr(), len(seen), total, st)
		if len(seen) == 0 || len(seen) == total {
			t.Fatalf("%d of %d datagrams buffered unread: want some, and not all (16 MiB buffer)", len(seen), total)
		}
		if st.Sent+st.Unsent != total || uint64(len(seen)) > st.Sent {
			t.Fatalf("sender's counts %+v do not add up to the %d datagrams written (%d read)", st, total, len(seen))
		}
		if st.Unsent == 0 {
			t.Fatalf("the sender counted no datagram dropped for want of credit: %+v", st)
		}
	}
}

// numbered is payload(size, i) with i in bytes 4 and 5, for more than 256
// datagrams of one size.
func numbered(size, i int) []byte {
	p := payload(size, i)
	binary.LittleEndian.PutUint16(p[4:], uint16(i))
	return p
}
