package mux

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestReserveCommitWrite: bytes filled into a reservation reach the peer
// as written; Write queues nothing while a reservation is open; and a
// reservation whose sending side ends meanwhile (CloseWrite) commits
// nothing and reports Write's error.
func TestReserveCommitWrite(t *testing.T) {
	a, b, w := established(t)
	id, err := a.OpenStream("", 0)
	if err != nil {
		t.Fatal(err)
	}
	room, err := a.ReserveWrite(id, 5000)
	if err != nil || len(room) == 0 {
		t.Fatalf("ReserveWrite = %d bytes, %v", len(room), err)
	}
	if n, err := a.Write(id, []byte("later")); n != 0 || err != nil {
		t.Fatalf("Write during a reservation = %d, %v; want 0, nil", n, err)
	}
	msg := []byte("straight into the ring")
	copy(room, msg)
	if n, err := a.CommitWrite(id, len(msg)); n != len(msg) || err != nil {
		t.Fatalf("CommitWrite = %d, %v", n, err)
	}
	if n, err := a.Write(id, []byte(", then a Write")); n != 14 || err != nil {
		t.Fatalf("Write after the commit = %d, %v", n, err)
	}
	w.flush(a, b)
	got := acceptAll(t, b)
	buf := make([]byte, 100)
	n, err := b.Read(got, buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("straight into the ring, then a Write")) {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}

	room, err = a.ReserveWrite(id, 100)
	if err != nil || len(room) == 0 {
		t.Fatalf("second ReserveWrite = %d bytes, %v", len(room), err)
	}
	copy(room, "dropped")
	if err := a.CloseWrite(id); err != nil {
		t.Fatal(err)
	}
	if n, err := a.CommitWrite(id, 7); n != 0 || !errors.Is(err, ErrWriteClosed) {
		t.Fatalf("CommitWrite after CloseWrite = %d, %v; want 0, ErrWriteClosed", n, err)
	}
	if _, err := a.ReserveWrite(id, 100); !errors.Is(err, ErrWriteClosed) {
		t.Fatalf("ReserveWrite after CloseWrite: %v", err)
	}
	w.flush(a, b)
	drainEvents(b)
	n, err = b.Read(got, buf)
	if n != 0 || err != io.EOF {
		t.Fatalf("peer read %q, %v after the FIN; want 0, io.EOF: the dropped bytes never sent", buf[:n], err)
	}
}
