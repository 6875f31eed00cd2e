package noise

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Overlapping X25519 work within one handshake.
//
// X25519 is most of a handshake's CPU time, and several of its scalar
// multiplications do not depend on each other: the initiator's "ss" does
// not need the ephemeral key that "es" uses; "ee" and "se" of message 2
// need the same inputs but not each other's output; the responder's
// ephemeral key for message 2 does not depend on message 1 at all. The
// handshake hands one of each such pair to a short-lived goroutine and
// computes the other itself, so on a machine with a spare core a handshake
// takes fewer multiplications' time end to end. The CPU work is the same;
// only its latency shrinks. The result is mixed in at its token's place,
// so the transcript, the keys and the test vectors are exactly as before.
//
// A task copies its inputs (a key pair and a public key, by value), so the
// helper shares no mutable memory with the handshake; the
// handshake waits for it (join) before using or dropping its result, and
// before returning from a failed message, so no helper outlives the call
// that needs it except a pending ephemeral key for the next message. The
// helper goroutine exits after its one task: nothing lingers in an idle
// process.
//
// A task not yet started when the handshake needs it is taken back and
// run by the handshake itself (claim). Waking an idle core takes long on
// some machines: on this project's 2-core virtual machine a goroutine
// started beside a busy one began on the other core after 70 µs at the
// 10th percentile and 150 µs at the median (a 13 µs key generation and a
// 36 µs DH are shorter), and the Go runtime keeps a new goroutine on its
// creator's P until then. Waiting for such a helper made a handshake
// slower than doing the work in turn; with claim, overlapping is never
// slower than not overlapping.

// dhTask is one X25519 operation for a helper goroutine, or for the
// handshake itself if no helper has started it when it is needed.
type dhTask struct {
	gen bool // generate kp (a fresh ephemeral key pair) instead of a DH
	// withDH: after generating kp, also compute out = DH(kp, pub), the
	// initiator's "es" with a known responder key (AheadFor, prepare.go);
	// dhOK reports that it succeeded.
	withDH, dhOK bool
	// own: the task is not from dhTasks and does not go back to it
	// (prepare.go), so no stale pointer to it can ever claim a later use.
	own bool
	kp  KeyPair     // the local key pair of a DH; the generated pair
	pub [DHLen]byte // the remote key of a DH
	out [DHLen]byte // the DH output
	err error
	// state decides who runs the task: taskQueued until a helper or the
	// handshake claims it (taskClaimed); taskIdle while it is in the pool.
	// Fields are set before the store of taskQueued and read after a
	// successful claim, so the claim orders them.
	state atomic.Int32
	// wg is done when the task has run; the handshake waits on it.
	wg sync.WaitGroup
}

// Task states (dhTask.state). A pooled task is idle, so that a helper
// that finds a stale pointer to it (the handshake took the task back and
// released it) cannot claim it before it is queued again.
const (
	taskIdle int32 = iota
	taskQueued
	taskClaimed
)

// take claims t for the caller, unrun, if nobody has claimed it yet.
func (t *dhTask) take() bool { return t.state.CompareAndSwap(taskQueued, taskClaimed) }

// claim runs t if nobody has claimed it yet; it reports whether it did.
func (t *dhTask) claim() bool {
	if !t.take() {
		return false
	}
	t.run()
	t.wg.Done()
	return true
}

// finish runs t here if no helper has started it, else waits for the
// helper: the task is done when finish returns.
func (t *dhTask) finish() {
	if !t.claim() {
		t.wg.Wait()
	}
}

// cancel drops t unrun if nobody has claimed it, else waits for the
// helper running it: either way nothing touches t when cancel returns.
func (t *dhTask) cancel() {
	if t.take() {
		t.wg.Done()
		return
	}
	t.wg.Wait()
}

// run performs the task.
func (t *dhTask) run() {
	if t.gen {
		t.err = t.kp.generate()
		if t.err == nil && t.withDH {
			t.dhOK = dh(&t.out, &t.kp, &t.pub) == nil
		}
		return
	}
	t.err = dh(&t.out, &t.kp, &t.pub)
}

// clear erases the task's key material before it goes back to the pool.
func (t *dhTask) clear() {
	clear(t.out[:])
	t.kp, t.pub, t.err, t.gen = KeyPair{}, [DHLen]byte{}, nil, false
	t.withDH, t.dhOK = false, false
	t.state.Store(taskIdle)
}

// dhTasks recycles tasks, so that overlapping costs no allocation.
var dhTasks = sync.Pool{New: func() any { return new(dhTask) }}

// dhQueue hands tasks to the helper goroutines: each `go dhHelper()`
// takes exactly one (a go statement without arguments allocates nothing).
// The task it takes may have been claimed by its handshake meanwhile, and
// even released and queued again by another: the claim settles who runs
// it, and every queued incarnation of a task runs exactly once.
var dhQueue = make(chan *dhTask, 256)

func dhHelper() {
	(<-dhQueue).claim()
}

// overlapping reports whether handing work to another goroutine can help:
// not with a single P, where the helper would only take turns with us.
func overlapping() bool { return runtime.GOMAXPROCS(0) > 1 }

// spawn hands t to a helper goroutine, or, with no spare P or a full
// queue, runs it here and now: the result is the same.
func spawn(t *dhTask) {
	t.wg.Add(1)
	t.state.Store(taskQueued)
	if overlapping() {
		select {
		case dhQueue <- t:
			go dhHelper()
			return
		default:
		}
	}
	t.claim()
}

// startTask spawns t as the pending DH of token tok.
func (hs *HandshakeState) startTask(t *dhTask, tok token) {
	hs.pend, hs.pendTok = t, tok
	spawn(t)
}

// startDH starts DH(kp, pub) for token tok on a helper, if nothing is
// pending and the inputs are valid.
func (hs *HandshakeState) startDH(tok token, kp *KeyPair, pub *[DHLen]byte) {
	if hs.pend != nil || !kp.valid() || pub == nil {
		return
	}
	t := dhTasks.Get().(*dhTask)
	t.kp, t.pub = *kp, *pub
	hs.startTask(t, tok)
}

// join waits for the pending task and takes it; the caller must clear it
// and put it back in dhTasks (release).
func (hs *HandshakeState) join() *dhTask {
	t := hs.pend
	hs.pend, hs.pendTok = nil, 0
	t.finish()
	return t
}

// release erases t and returns it to the pool (unless it is its own).
func release(t *dhTask) {
	own := t.own
	t.clear()
	if !own {
		dhTasks.Put(t)
	}
}

// dropPending waits for and discards any pending DH: a failed message
// leaves no DH of its own running (its inputs and results are erased). A
// key pair generated ahead for this side's next message stays, for the
// message that will be read after this failed one.
func (hs *HandshakeState) dropPending() {
	if t := hs.pend; t != nil {
		hs.pend, hs.pendTok = nil, 0
		t.cancel()
		release(t)
	}
}

// Ahead is an ephemeral key pair being generated on a helper goroutine
// ahead of the handshake that will use it (Config.Ahead), so that the
// generation overlaps whatever the caller does meanwhile: a dialer makes
// its socket and its static key object. Each Ahead is used by at most one
// handshake. The zero Ahead is none.
type Ahead struct{ t *dhTask }

// GenerateAhead starts generating an ephemeral key pair; with no spare P
// it returns the zero Ahead (the handshake then generates its own).
func GenerateAhead() Ahead {
	if !overlapping() {
		return Ahead{}
	}
	t := dhTasks.Get().(*dhTask)
	t.gen = true
	spawn(t)
	return Ahead{t}
}

// Discard drops an Ahead that will not be used: it waits for the helper
// and erases the key pair. Safe on the zero Ahead and after use.
func (a *Ahead) Discard() {
	if a.t != nil {
		a.t.cancel()
		release(a.t)
		a.t = nil
	}
}

// take waits for the key pair and moves it into kp, and the "es" computed
// with it, if any (AheadFor), into es.
func (a *Ahead) take(kp *KeyPair, es *aheadDH) error {
	t := a.t
	a.t = nil
	t.finish()
	err := t.err
	*kp = t.kp
	if err == nil && t.withDH && t.dhOK {
		*es = aheadDH{out: t.out, e: t.kp.pub, rs: t.pub, ok: true}
	}
	release(t)
	return err
}

// prefetch starts, at the beginning of writing message 1, the initiator's
// static-static DH when it is not cached: it does not need the ephemeral
// key that "es" uses.
func (hs *HandshakeState) prefetch() {
	if hs.pend != nil || !hs.st.haveRS || !hs.initiator || !overlapping() {
		return
	}
	for _, t := range hs.pattern[hs.st.msg] {
		if t == tokSS {
			if _, ok := ssLookup(hs.ssKey()); !ok {
				hs.startDH(tokSS, hs.s, &hs.st.rs)
			}
			return
		}
	}
}

// prefetchEphemeral starts generating the ephemeral key of the next
// message when this side reads the current one and writes the next
// (the responder). It is called at the "ss" token, the last DH of message
// 1: the work then runs beside that DH and the payload check. Starting
// there rather than at the message's start spends nothing on an initiation
// whose encrypted static key fails to authenticate.
func (hs *HandshakeState) prefetchEphemeral() {
	next := hs.st.msg + 1
	writesCurrent := (hs.st.msg%2 == 0) == hs.initiator
	if hs.ahead.t != nil || writesCurrent || hs.fixedE != nil || next >= len(hs.pattern) ||
		hs.pattern[next][0] != tokE || !overlapping() {
		return
	}
	hs.ahead = GenerateAhead()
}

// takeEphemeral sets the local ephemeral key pair for the "e" token: the
// fixed test key, the one a helper generated ahead (Config.Ahead or
// prefetchEphemeral), or a fresh one.
func (hs *HandshakeState) takeEphemeral() error {
	switch {
	case hs.fixedE != nil:
		hs.st.e = *hs.fixedE
		return nil
	case hs.ahead.t != nil:
		return hs.ahead.take(&hs.st.e, &hs.aheadES)
	}
	return hs.st.e.generate()
}

// dhInputs returns the local key pair and remote public key of the DH
// token t ("es", "se", "ee"; §5.3), as mixToken documents. The public key
// is nil while it is unknown.
func (hs *HandshakeState) dhInputs(t token) (*KeyPair, *[DHLen]byte) {
	st := &hs.st
	re, rs := &st.re, &st.rs
	if !st.haveRE {
		re = nil
	}
	if !st.haveRS {
		rs = nil
	}
	switch {
	case t == tokEE:
		return &st.e, re
	case t == tokES && hs.initiator, t == tokSE && !hs.initiator:
		return &st.e, rs
	default: // es for the responder, se for the initiator
		return hs.s, re
	}
}

// mixDHToken is MixKey(DH) for the token t, taking a helper's result if
// one computed it; rest are the tokens after t in the message. If the next
// one is a DH token too ("ee" then "se"), it is handed to a helper first,
// so both multiplications run at once.
func (hs *HandshakeState) mixDHToken(t token, rest []token) error {
	if t == tokES && hs.initiator && hs.aheadES.ok {
		// Computed ahead with this very ephemeral key and responder key
		// (the comparison of public values needs no constant time).
		es := &hs.aheadES
		if es.e == hs.st.e.pub && es.rs == hs.st.rs {
			err := hs.st.ss.MixKey(es.out[:])
			*es = aheadDH{}
			return err
		}
		*es = aheadDH{} // for another key: computed below instead
	}
	if hs.pend != nil && hs.pendTok == t {
		task := hs.join()
		err := task.err
		if err == nil {
			err = hs.st.ss.MixKey(task.out[:])
		}
		release(task)
		return err
	}
	if len(rest) > 0 && (rest[0] == tokEE || rest[0] == tokES || rest[0] == tokSE) && overlapping() {
		kp, pub := hs.dhInputs(rest[0])
		hs.startDH(rest[0], kp, pub)
	}
	kp, pub := hs.dhInputs(t)
	return hs.mixDH(kp, pub)
}
