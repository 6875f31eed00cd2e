package endpoint

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// openEcho opens an accepted stream to an echo service; until something
// is written it has nothing to read, so Reads block. It also returns the
// stream's session and the two endpoints.
func openEcho(t *testing.T) (st *Stream, s *Session, server, client *Endpoint) {
	t.Helper()
	server, client = newPair(t)
	svc, err := server.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	go echo(svc)
	s, err = client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	st, err = s.OpenStream("", 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WaitAccepted(ctx(t)); err != nil {
		t.Fatal(err)
	}
	return st, s, server, client
}

// TestCloseWakesEveryBlockedCall: Close wakes every blocked Read, however
// many, through the stream's one wake-up channel (no closed channel).
func TestCloseWakesEveryBlockedCall(t *testing.T) {
	st, _, _, _ := openEcho(t)
	const readers = 4
	errs := make(chan error, readers)
	var started sync.WaitGroup
	for i := 0; i < readers; i++ {
		started.Add(1)
		go func() {
			started.Done()
			_, err := st.Read(make([]byte, 8))
			errs <- err
		}()
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // let them block (the test passes either way)
	st.Close()
	for i := 0; i < readers; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("reader %d: %v, want ErrClosed", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d blocked readers woke on Close", i, readers)
		}
	}
}

// TestDeadlineWakesBlockedRead: a deadline set while a Read is blocked on
// a stream that never had one applies to that Read.
func TestDeadlineWakesBlockedRead(t *testing.T) {
	st, _, _, _ := openEcho(t)
	errc := make(chan error, 1)
	go func() {
		_, err := st.Read(make([]byte, 8))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	st.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want a deadline error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked Read ignored the new deadline")
	}
	// Reads and writes still work after clearing it.
	st.SetDeadline(time.Time{})
	if _, err := st.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if n, err := st.Read(b); err != nil || n == 0 {
		t.Fatalf("read after clearing the deadline: %d %v", n, err)
	}
}

// TestServedNames: the few services a session saw accept are remembered,
// the default service "" included, the oldest replaced first, and a
// refusal forgets its service.
func TestServedNames(t *testing.T) {
	var sn servedNames
	if sn.has("") || sn.has("web") {
		t.Fatal("an empty set has names")
	}
	sn.add("")
	sn.add("web")
	sn.add("web")
	if !sn.has("") || !sn.has("web") || sn.has("ssh") {
		t.Fatalf("after adding \"\" and web: %+v", sn)
	}
	sn.remove("")
	if sn.has("") || !sn.has("web") {
		t.Fatalf("after removing \"\": %+v", sn)
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		sn.add(n)
	}
	if sn.has("web") || !sn.has("a") || !sn.has("d") {
		t.Fatalf("after four more: %+v (web, the oldest, should be gone)", sn)
	}
}
