package net

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// chunkReader returns a pseudo-random stream of total bytes in reads of
// varying size, and records the largest buffer it was offered. It has no
// WriteTo, so io.Copy must use the destination's ReadFrom (or a buffer).
type chunkReader struct {
	rng      *rand.Rand
	left     int
	h        io.Writer
	maxOffer int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.maxOffer = max(r.maxOffer, len(p))
	if r.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left, 1+r.rng.IntN(100<<10))
	for i := range p[:n] {
		p[i] = byte(r.rng.Uint32())
	}
	r.h.Write(p[:n])
	r.left -= n
	return n, nil
}

// TestReadFromStream: io.Copy into a stream channel goes through its
// ReadFrom (the source is offered more than io.Copy's 32 KiB buffer, so
// it reads into the send buffer itself), and the peer gets every byte in
// order.
func TestReadFromStream(t *testing.T) {
	for _, network := range []string{"haven4", "haven4+tcp"} {
		t.Run(network, func(t *testing.T) {
			c1, c2, stop, err := pipeFactoryOn(t, network, Config{})()
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			const total = 24 << 20
			sent := sha256.New()
			src := &chunkReader{rng: rand.New(rand.NewPCG(1, 2)), left: total, h: sent}
			got := make(chan []byte, 1)
			go func() {
				h := sha256.New()
				n, err := io.Copy(h, c2)
				if err != nil || n != total {
					t.Errorf("peer read %d bytes, %v; want %d", n, err, total)
				}
				got <- h.Sum(nil)
			}()
			n, err := io.Copy(c1, src)
			if err != nil || n != total {
				t.Fatalf("io.Copy = %d, %v; want %d, nil", n, err, total)
			}
			if src.maxOffer <= 32<<10 {
				t.Fatalf("the source was offered at most %d bytes: io.Copy did not use ReadFrom", src.maxOffer)
			}
			if err := c1.(*Conn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(<-got, sent.Sum(nil)) {
				t.Fatal("the peer read other bytes than were sent")
			}
		})
	}
}

// TestReadFromDeadline: ReadFrom into a stream whose peer does not read
// fills the windows and the send buffer, then ends at the write deadline
// with a timeout error and the count of bytes queued.
func TestReadFromDeadline(t *testing.T) {
	c1, _, stop, err := pipeFactory(t)()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c1.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	const limit = 1 << 30
	n, err := c1.(*Conn).ReadFrom(io.LimitReader(zeros{}, limit))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom past its deadline: %v", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "readfrom" {
		t.Fatalf("error %v is not a *net.OpError of readfrom", err)
	}
	if n <= 0 || n >= limit {
		t.Fatalf("ReadFrom queued %d bytes before its deadline", n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// blockingReader returns one byte per Read until released, then blocks in
// Read until the test lets it return more.
type blockingReader struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (r *blockingReader) Read(p []byte) (int, error) {
	r.once.Do(func() { close(r.entered) })
	<-r.release
	p[0] = 'x'
	return 1, nil
}

// TestReadFromClosed: Close while ReadFrom waits in its source's Read ends
// ReadFrom with net.ErrClosed once the Read returns; the byte that Read
// returned is not queued.
func TestReadFromClosed(t *testing.T) {
	c1, c2, stop, err := pipeFactory(t)()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	r := &blockingReader{entered: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	var n int64
	go func() {
		var err error
		n, err = c1.(*Conn).ReadFrom(r)
		done <- err
	}()
	<-r.entered
	c1.Close()
	close(r.release)
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v (want net.ErrClosed)", err)
	}
	if n != 0 {
		t.Fatalf("ReadFrom queued %d bytes after Close", n)
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c2); len(b) != 0 || err != nil {
		t.Fatalf("the peer read %q, %v; want a clean empty stream", b, err)
	}
}

// TestWritesWhole: concurrent Writes and ReadFroms on one stream each
// queue their bytes as one piece, as on a TCP connection: the peer sees
// runs of whole writes, never two interleaved.
func TestWritesWhole(t *testing.T) {
	c1, c2, stop, err := pipeFactory(t)()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	const piece, each, writers = 3 << 20, 4, 4 // pieces larger than the send buffer
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := bytes.Repeat([]byte{byte('a' + w)}, piece)
			for i := range each {
				var err error
				if i%2 == 0 {
					_, err = c1.Write(p)
				} else {
					_, err = c1.(*Conn).ReadFrom(bytes.NewBuffer(p)) // *bytes.Buffer: io.Copy would use its WriteTo
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); c1.(*Conn).CloseWrite() }()
	c2.SetReadDeadline(time.Now().Add(2 * time.Minute))
	all, err := io.ReadAll(c2)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != piece*each*writers {
		t.Fatalf("read %d bytes, want %d", len(all), piece*each*writers)
	}
	for off := 0; off < len(all); off += piece {
		run := all[off : off+piece]
		if bytes.Count(run, run[:1]) != piece {
			t.Fatalf("bytes [%d, %d) mix two writes", off, off+piece)
		}
	}
}

// TestReadFromEmptyAfterPeerClosed: a source that is already at its end
// is no error even when the peer has closed the stream, as io.Copy with a
// buffer writes nothing then (an echo server's io.Copy(c, c) ends so when
// its client closes right after reading the last byte).
func TestReadFromEmptyAfterPeerClosed(t *testing.T) {
	c1, c2, stop, err := pipeFactory(t)()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c2.Close()
	c1.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c1); err != nil {
		t.Fatalf("reading up to the peer's close: %v", err)
	}
	// Wait until a write sees that the peer stopped reading.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := c1.Write([]byte("x")); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes still succeed 10 s after the peer closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, err := c1.(*Conn).ReadFrom(bytes.NewReader(nil)); n != 0 || err != nil {
		t.Fatalf("ReadFrom of an empty source after the peer closed = %d, %v; want 0, nil", n, err)
	}
	if n, err := c1.(*Conn).ReadFrom(strings.NewReader("data")); n != 0 || err == nil {
		t.Fatalf("ReadFrom of data after the peer closed = %d, %v; want 0 and an error", n, err)
	}
}
