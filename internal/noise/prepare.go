package noise

import (
	"sync"
	"sync/atomic"
	"time"
)

// First messages prepared ahead of the dial that sends them.
//
// The initiator's first message needs a fresh ephemeral key pair and "es",
// DH(e, rs) with the responder's static key: one fixed-base and one
// variable-base X25519 multiplication (about 14 and 45 µs here) before the
// initiation can leave, on the critical path of every dial. Neither
// depends on anything but rs, which a dialer knows in advance. A process
// that has just completed a handshake with a responder is likely to dial
// it again (a connection pool, a proxy, a client that reconnects), so
// Prepare computes the pair and its "es" for the next dial on a goroutine
// of its own, off the dial's path, and AheadFor hands it to that dial.
//
// What is kept: a fresh ephemeral key pair, used by at most one handshake,
// and its DH with a public key; never a static private key. An entry not
// taken within prepTTL is erased; at most prepMax responders have one.
// The key pair is erased by the handshake that uses it as any other
// ephemeral key (§5.3: after the last message), so forward secrecy is as
// before; the only difference is how long before the handshake the key
// existed, which Noise does not constrain (§14 asks for a fresh key per
// handshake, which this is).

// prepTTL bounds how long a prepared key pair waits for its dial.
const prepTTL = 30 * time.Second

// prepMax bounds the responders with a prepared first message (about
// 300 bytes each with the task and its timer).
const prepMax = 64

// prepEntry is one responder's prepared key pair and "es": t is queued
// for, or being run by, the preparing goroutine until timer is set (t is
// ready then, and timer erases it after prepTTL). A dial that takes the
// entry takes t over whether or not it is ready: its handshake runs t
// itself if the preparing goroutine has not started it, or waits for it
// (dhTask.finish).
type prepEntry struct {
	t     *dhTask
	timer *time.Timer
}

// prepared maps a responder's static public key to its entry. mu guards m
// and the entries' fields: dials, preparing goroutines and expiry timers
// run on many goroutines. Whoever removes an entry from m owns its task.
var prepared struct {
	mu sync.Mutex
	m  map[[DHLen]byte]*prepEntry
}

// preparedTaken counts the entries AheadFor handed to dials.
var preparedTaken atomic.Uint64

// PreparedTaken reports how many prepared key pairs dials have taken in
// this process (ready or in the making): tests check with it that a
// dialer uses them.
func PreparedTaken() uint64 { return preparedTaken.Load() }

// AheadFor returns the ephemeral key pair for an initiation to the
// responder rs, with its "es" (Config.Ahead): the one Prepare makes or
// made; else, if start is set and there is a spare P, one now being made
// on a helper goroutine (which the handshake takes back if no helper has
// started it when needed, as with GenerateAhead). Otherwise it is the
// zero Ahead: the handshake makes its own.
func AheadFor(rs *[DHLen]byte, start bool) Ahead {
	prepared.mu.Lock()
	if e := prepared.m[*rs]; e != nil {
		delete(prepared.m, *rs)
		if e.timer != nil {
			e.timer.Stop() // if it fired already, expire finds the entry gone
		}
		prepared.mu.Unlock()
		preparedTaken.Add(1)
		return Ahead{e.t}
	}
	prepared.mu.Unlock()
	if !start || !overlapping() {
		return Ahead{}
	}
	t := dhTasks.Get().(*dhTask)
	t.gen, t.withDH, t.pub = true, true, *rs
	spawn(t)
	return Ahead{t}
}

// Prepare starts making the ephemeral key pair and "es" of the next
// initiation to rs on a goroutine of its own, unless one is ready or being
// made, or prepMax responders have one. Call it when a handshake with rs
// has completed. The goroutine ends when the work is done; the result is
// erased after prepTTL if no dial takes it.
func Prepare(rs *[DHLen]byte) {
	if isZero(rs[:]) {
		return
	}
	prepared.mu.Lock()
	if prepared.m == nil {
		prepared.m = make(map[[DHLen]byte]*prepEntry)
	}
	if _, ok := prepared.m[*rs]; ok || len(prepared.m) >= prepMax {
		prepared.mu.Unlock()
		return
	}
	// A task of its own, never pooled: the preparing goroutine may find it
	// claimed by a dial, and must never find it queued again for another.
	t := &dhTask{gen: true, withDH: true, pub: *rs, own: true}
	t.wg.Add(1)
	t.state.Store(taskQueued)
	e := &prepEntry{t: t}
	prepared.m[*rs] = e
	prepared.mu.Unlock()
	go prepare(*rs, e, t)
}

// prepare runs t, e's task, unless a dial took it and ran it first, and
// makes the result available if no dial has taken it meanwhile.
func prepare(rs [DHLen]byte, e *prepEntry, t *dhTask) {
	if !t.claim() {
		return // a dial's handshake ran it (t is the dial's), or DiscardPrepared dropped it
	}
	prepared.mu.Lock()
	defer prepared.mu.Unlock()
	if prepared.m[rs] != e {
		return // taken by a dial, which waited for us, or discarded
	}
	if t.err != nil || !t.dhOK { // no randomness, or a low-order key
		delete(prepared.m, rs)
		release(t)
		return
	}
	e.timer = time.AfterFunc(prepTTL, func() { expire(rs, e) })
}

// expire erases e, rs's entry, if no dial has taken it.
func expire(rs [DHLen]byte, e *prepEntry) {
	prepared.mu.Lock()
	defer prepared.mu.Unlock()
	if prepared.m[rs] != e || e.timer == nil {
		return
	}
	delete(prepared.m, rs)
	release(e.t)
}

// DiscardPrepared erases every prepared key pair (tests; a process that
// wants none kept). It waits for tasks being run.
func DiscardPrepared() {
	prepared.mu.Lock()
	defer prepared.mu.Unlock()
	for rs, e := range prepared.m {
		delete(prepared.m, rs)
		if e.timer != nil {
			e.timer.Stop()
		}
		e.t.cancel() // the preparing goroutine never takes mu before its run ends
		release(e.t)
	}
}

// preparedCount reports the entries ready and in the making (tests).
func preparedCount() (ready, making int) {
	prepared.mu.Lock()
	defer prepared.mu.Unlock()
	for _, e := range prepared.m {
		if e.timer != nil {
			ready++
		} else {
			making++
		}
	}
	return ready, making
}
