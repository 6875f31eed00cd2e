package endpoint

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// TestLentBuffersReturn: stream data that waits for a reader stays in the
// packet buffers it arrived in (the server session holds them lent), the
// reader gets it byte for byte, and once it is read every buffer is given
// back: the session's lent count returns to zero.
func TestLentBuffersReturn(t *testing.T) {
	server, client := newPair(t)
	svc, err := server.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.OpenStream("", 3)
	if err != nil {
		t.Fatal(err)
	}
	const size = 192 << 10 // within the first window: nothing waits for the reader
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i*7 + i>>10)
	}
	st.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := st.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	in, err := svc.Accept(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	peer := in.s
	// Wait, bounded, until the client has every byte acknowledged: all
	// of it is in the server's session, unread.
	for i := 0; ; i++ {
		s.mu.Lock()
		st := s.m.Stats()
		s.mu.Unlock()
		if st.StreamBytesSent == size && st.BytesInFlight == 0 {
			break
		}
		if i == 2000 {
			t.Fatalf("%d of %d bytes sent, %d bytes in flight after 20 s", st.StreamBytesSent, size, st.BytesInFlight)
		}
		time.Sleep(10 * time.Millisecond)
	}
	peer.mu.Lock()
	l := peer.lent
	peer.mu.Unlock()
	if l <= 0 {
		t.Fatalf("%d bytes of packet buffers lent while %d bytes wait unread: the data was copied", l, size)
	}
	in.SetDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(in)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes (%v), want the %d written", len(got), err, size)
	}
	peer.mu.Lock()
	l = peer.lent
	peer.mu.Unlock()
	if l != 0 {
		t.Fatalf("%d bytes of packet buffers still lent after the stream was read", l)
	}
}
