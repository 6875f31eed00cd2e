package noise

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// handshakeWith runs an IK handshake whose initiator uses ahead (or the
// fixed ephemeral key fixedE) and returns message 1 and the responder's
// handshake hash after the handshake (equal to the initiator's, checked),
// or the error of the first message that failed.
func handshakeWith(t *testing.T, is, rs *KeyPair, ahead Ahead, fixedE *KeyPair) (m1, hash []byte, err error) {
	t.Helper()
	i, err := NewInitiator(Config{Static: is, RemoteStatic: rs.PublicKey(), Ahead: ahead, Ephemeral: fixedE})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewResponder(Config{Static: rs})
	if err != nil {
		t.Fatal(err)
	}
	m1, err = i.WriteMessage(nil, []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadMessage(nil, m1); err != nil {
		return nil, nil, err
	}
	m2, err := r.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := i.ReadMessage(nil, m2); err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(i.HandshakeHash(), r.HandshakeHash()) {
		t.Fatal("the two sides' handshake hashes differ")
	}
	return m1, bytes.Clone(r.HandshakeHash()), nil
}

// aheadOf is an Ahead holding the key pair e and the given "es" for rs,
// as AheadFor hands out.
func aheadOf(e *KeyPair, rs [DHLen]byte, es [DHLen]byte) Ahead {
	t := dhTasks.Get().(*dhTask)
	t.gen, t.withDH, t.dhOK = true, true, true
	t.kp, t.pub, t.out = *e, rs, es
	t.wg.Add(1)
	t.state.Store(taskClaimed)
	t.wg.Done()
	return Ahead{t}
}

// TestAheadES: the initiator's "es" computed ahead is the one the
// handshake mixes in: with the right value message 1 is byte for byte that
// of the same ephemeral key without it; with a wrong one the responder
// refuses message 1; one computed for another responder key is not used.
func TestAheadES(t *testing.T) {
	is, rs, e, other := mustGenerate(t), mustGenerate(t), mustGenerate(t), mustGenerate(t)
	want, _, err := handshakeWith(t, is, rs, Ahead{}, e)
	if err != nil {
		t.Fatal(err)
	}
	var es [DHLen]byte
	if err := dh(&es, e, &rs.pub); err != nil {
		t.Fatal(err)
	}
	m1, _, err := handshakeWith(t, is, rs, aheadOf(e, rs.pub, es), nil)
	if err != nil || !bytes.Equal(m1, want) {
		t.Fatalf("with es ahead: err %v, message 1 equal %v", err, bytes.Equal(m1, want))
	}
	bad := es
	bad[0] ^= 1
	if _, _, err := handshakeWith(t, is, rs, aheadOf(e, rs.pub, bad), nil); err == nil {
		t.Fatal("a wrong es ahead went unnoticed: the handshake did not use it")
	}
	// Made for another responder: ignored, the handshake computes its own.
	m1, _, err = handshakeWith(t, is, rs, aheadOf(e, other.pub, bad), nil)
	if err != nil || !bytes.Equal(m1, want) {
		t.Fatalf("es for another responder: err %v, message 1 equal %v", err, bytes.Equal(m1, want))
	}
}

// waitPrepared waits (bounded) until nothing is being prepared.
func waitPrepared(t *testing.T) (ready int) {
	t.Helper()
	for range 1000 {
		r, making := preparedCount()
		if making == 0 {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("a prepared key pair was not made within 5 s")
	return 0
}

// TestPrepare: Prepare makes one key pair and "es" per responder; AheadFor
// hands it to exactly one handshake, which completes; then there is none
// until the next Prepare. Low-order keys and the bound leave nothing;
// expiry and DiscardPrepared erase the entries.
func TestPrepare(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	DiscardPrepared()
	defer DiscardPrepared()
	is, rs := mustGenerate(t), mustGenerate(t)
	if a := AheadFor(&rs.pub, false); a.t != nil {
		t.Fatal("an Ahead with nothing prepared and start false")
	}
	taken := PreparedTaken()
	Prepare(&rs.pub)
	Prepare(&rs.pub) // one entry per responder
	if n := waitPrepared(t); n != 1 {
		t.Fatalf("%d entries ready, want 1", n)
	}
	a := AheadFor(&rs.pub, false)
	if a.t == nil || !a.t.withDH || !a.t.dhOK || a.t.state.Load() != taskClaimed {
		t.Fatal("the prepared key pair was not handed out ready")
	}
	if r, m := preparedCount(); r+m != 0 || PreparedTaken() != taken+1 {
		t.Fatalf("%d+%d entries after the take, want none; %d taken, want 1", r, m, PreparedTaken()-taken)
	}
	if _, _, err := handshakeWith(t, is, rs, a, nil); err != nil {
		t.Fatalf("handshake with a prepared key pair: %v", err)
	}
	if a := AheadFor(&rs.pub, false); a.t != nil {
		t.Fatal("a prepared key pair handed out twice")
	}
	// With start, a helper makes one with its es.
	a = AheadFor(&rs.pub, true)
	if a.t == nil {
		t.Fatal("AheadFor with start and two Ps started nothing")
	}
	if _, _, err := handshakeWith(t, is, rs, a, nil); err != nil {
		t.Fatal(err)
	}

	var low [DHLen]byte
	low[0] = 1 // u = 1: a low-order point, DH output zero
	Prepare(&low)
	if n := waitPrepared(t); n != 0 {
		t.Fatalf("%d entries ready after a low-order key, want 0", n)
	}

	for i := range prepMax + 5 {
		var k [DHLen]byte
		k[0], k[1], k[31] = 9, byte(i), byte(i>>8)
		Prepare(&k)
	}
	if n := waitPrepared(t); n > prepMax {
		t.Fatalf("%d entries, bound %d", n, prepMax)
	}
	DiscardPrepared()
	if r, m := preparedCount(); r+m != 0 {
		t.Fatalf("%d+%d entries after DiscardPrepared", r, m)
	}

	Prepare(&rs.pub)
	waitPrepared(t)
	prepared.mu.Lock()
	e := prepared.m[rs.pub]
	prepared.mu.Unlock()
	e.timer.Stop()
	expire(rs.pub, e)
	if r, _ := preparedCount(); r != 0 || e.t.kp.valid() {
		t.Fatal("an expired entry was kept or not erased")
	}
}

// TestPrepareTakenEarly: a dial that takes an entry still being made gets
// its key pair and "es" all the same (run by the preparing goroutine or by
// the handshake, whichever comes first), many times over, with Discard
// and DiscardPrepared racing the preparing goroutines (run with -race).
func TestPrepareTakenEarly(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	DiscardPrepared()
	defer DiscardPrepared()
	is, rs := mustGenerate(t), mustGenerate(t)
	for i := range 200 {
		Prepare(&rs.pub)
		switch i % 4 {
		case 0, 1:
			a := AheadFor(&rs.pub, false)
			if a.t == nil {
				t.Fatal("an entry in the making was not handed out")
			}
			if _, _, err := handshakeWith(t, is, rs, a, nil); err != nil {
				t.Fatal(err)
			}
		case 2:
			a := AheadFor(&rs.pub, false)
			a.Discard()
		case 3:
			DiscardPrepared()
		}
	}
}
