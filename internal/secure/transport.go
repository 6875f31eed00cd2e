package secure

import (
	"encoding/binary"
	"time"

	"github.com/havenproto/haven/internal/noise"
	"github.com/havenproto/haven/wire"
)

// Transport seals and opens the transport packets of one session
// (docs/PROTOCOL.md §7.5) and manages its key sets across rekeys (§7.6);
// the package documentation describes the state machine. Seal and Open
// work in place and never allocate. A Transport is not safe for concurrent
// use: the goroutine that owns the session owns it.
type Transport struct {
	limits   Limits
	suite    wire.Suite // the session's construction: every packet carries its id
	peer     wire.PublicKey
	localID  wire.PeerID
	remoteID wire.PeerID

	sets                [3]keySet
	cur, prev, next     int8 // indices into sets, or none
	phase, phaseStarted bool // phase of the newest current, and whether there was one

	nextPN    uint64 // lowest packet number the next Seal accepts
	installed uint64 // key sets installed (the first handshake's included)
	// expiryChecked is the time of the last expire, whose checks need not
	// run again for the same now until a key set changes (Install, drop,
	// a first packet opened): a run seals or opens up to 88 packets with
	// one now, and the checks were 1 % of a bulk transfer's CPU.
	expiryChecked time.Time
	job           SealJob // Seal's job (Seal is not for concurrent use; SealJobs are)
	ojob          OpenJob // Open's job, likewise
}

const none int8 = -1

// keySet is the pair of keys from one handshake with its counters. The
// keys are held by value, moved in from an Established: a Transport is one
// allocation, whatever its key sets.
type keySet struct {
	send, recv noise.CipherState
	window     noise.ReplayWindow
	created    time.Time
	firstRecv  time.Time // when Open first authenticated a packet; zero until then
	sealed     uint64    // packets sealed with these keys
	opened     uint64    // packets opened with these keys
	phase      bool      // the K bit of its packets
	initiator  bool      // this side initiated the handshake
	inUse      bool
	gen        uint64 // Transport.installed when it was installed: tells an OpenJob's set from a later one
}

// NewTransport starts a session's transport with the keys of its first
// handshake. For the initiator they are current at once; for the responder
// they wait for the peer's first packet (Seal fails with ErrNotConfirmed
// until Open has authenticated one). It takes e's keys.
func NewTransport(e *Established, limits Limits, now time.Time) (*Transport, error) {
	t := new(Transport)
	if err := t.Init(e, limits, now); err != nil {
		return nil, err
	}
	return t, nil
}

// Init is NewTransport for a Transport the caller holds (by value, in its
// session's own object: one allocation less per session); t must be the
// zero Transport.
func (t *Transport) Init(e *Established, limits Limits, now time.Time) error {
	if e == nil {
		return ErrUsed
	}
	*t = Transport{limits: limits.withDefaults(), cur: none, prev: none, next: none}
	t.peer, t.localID, t.remoteID, t.suite = e.Peer, e.LocalID, e.RemoteID, e.Suite
	return t.Install(e, now)
}

// Install adds the keys of a completed rekey handshake of this session and
// takes them from e. Keys from a handshake this side initiated become
// current at once (the K bit flips); keys from a handshake it answered wait
// as next until the peer's first packet under them. e must belong to this
// session: the same peer and peer ids.
func (t *Transport) Install(e *Established, now time.Time) error {
	if e == nil {
		return ErrUsed
	}
	if e.Peer != t.peer || e.LocalID != t.localID || e.RemoteID != t.remoteID || e.Suite != t.suite {
		return ErrSessionMismatch
	}
	if !e.usable() {
		return ErrUsed
	}
	t.expire(now)
	phase := t.phaseStarted && !t.phase
	t.drop(&t.prev)
	t.drop(&t.next)
	i := t.free()
	ks := &t.sets[i]
	t.installed++
	*ks = keySet{created: e.Created, phase: phase, initiator: e.Initiator, inUse: true, gen: t.installed}
	t.expiryChecked = time.Time{}
	if err := e.take(&ks.send, &ks.recv); err != nil { // cannot fail: e is usable
		*ks = keySet{}
		return err
	}
	if t.limits.KeyLog != nil {
		t.limits.KeyLog.logSet(t, ks, e.Align())
	}
	ks.window.RejectAfter = noise.DefaultRejectAfter // per-set counts are checked by sealed/opened
	if e.Initiator {
		t.prev, t.cur = t.cur, i
		t.phase, t.phaseStarted = phase, true
	} else {
		t.next = i
	}
	return nil
}

// Seal encrypts the transport packet pkt in place: pkt holds the 40-byte
// header, built by the caller with its packet number, and the plaintext
// messages, and cap(pkt) must leave room for the 16-byte tag. Packet
// numbers belong to the session, not to a key set (PROTOCOL.md §3.3): the
// session engine numbers packets for loss recovery, and Seal only checks
// that each number is above the last one sealed (at least
// NextPacketNumber), which keeps every nonce unique. Seal writes the
// session suite's protocol id and the key-phase flag, and appends the tag. It returns the sealed packet (pkt
// extended by the tag) and its packet number. The associated data is
// the header with its payload length field taken as zero, so the result
// does not depend on that field (a stream transport may set it before or
// after sealing); the nonce is 0x00000000 || u64le(packet number) under
// ChaCha20-Poly1305, 0x00000000 || u64be(packet number) under AES-256-GCM.
func (t *Transport) Seal(pkt []byte, now time.Time) (sealed []byte, pn uint64, err error) {
	job := &t.job // a job per Transport: a local one would escape to the heap
	if err := t.Prepare(pkt, now, job); err != nil {
		return nil, 0, err
	}
	sealed, err = job.Seal()
	return sealed, job.pn, err
}

// SealJob is the encryption half of sealing one packet, prepared by
// Transport.Prepare. Jobs of one Transport may run concurrently with each
// other and with later Prepare calls (each has its own nonce buffer and
// associated data), which lets one session's packets be encrypted on
// several cores and still go out in packet-number order. A job must finish
// before the next Open, Install or NeedsRekey call that could retire its
// keys; the endpoint runs them within the session's turn.
type SealJob struct {
	pkt []byte
	pn  uint64
	cs  *noise.CipherState
	ad  [wire.HeaderLen]byte
	nb  noise.NonceBuf
}

// Prepare does everything of Seal but the encryption: the checks, the
// protocol id of the session's suite and the key phase flag (the caller
// builds headers without knowing either), the counters. It fills job for
// Seal to finish.
func (t *Transport) Prepare(pkt []byte, now time.Time, job *SealJob) error {
	if len(pkt) < wire.HeaderLen {
		return ErrPacketTooShort
	}
	if cap(pkt)-len(pkt) < wire.TagLen {
		return ErrBufferTooSmall
	}
	if wire.Flags(pkt[wire.OffFlags])&wire.FlagHandshake != 0 {
		return ErrNotTransport
	}
	t.expire(now)
	if t.cur == none {
		if t.next != none {
			return ErrNotConfirmed
		}
		return ErrKeysExhausted
	}
	ks := &t.sets[t.cur]
	if ks.sealed >= t.limits.RejectAfterMessages {
		if t.next != none {
			return ErrNotConfirmed
		}
		return ErrKeysExhausted
	}
	pn := binary.LittleEndian.Uint64(pkt[wire.OffPacketNumber:])
	if pn < t.nextPN || pn == ^uint64(0) {
		return ErrPacketNumber
	}
	f := wire.Flags(pkt[wire.OffFlags]) &^ wire.FlagKeyPhase
	if ks.phase {
		f |= wire.FlagKeyPhase
	}
	pkt[wire.OffFlags] = byte(f)
	binary.LittleEndian.PutUint64(pkt[wire.OffProtocolID:], t.suite.IDWord())
	job.pkt, job.pn, job.cs = pkt, pn, &ks.send
	cryptoHeader(&job.ad, pkt)
	ks.sealed++
	t.nextPN = pn + 1
	return nil
}

// Seal encrypts the job's packet in place and returns it with its tag.
func (j *SealJob) Seal() ([]byte, error) {
	pkt := j.pkt
	if _, err := j.cs.EncryptAtWith(&j.nb, pkt[wire.HeaderLen:wire.HeaderLen], j.pn, j.ad[:], pkt[wire.HeaderLen:]); err != nil {
		return nil, ErrKeysExhausted
	}
	return pkt[:len(pkt)+wire.TagLen], nil
}

// PacketNumber returns the job's packet number.
func (j *SealJob) PacketNumber() uint64 { return j.pn }

// NextPacketNumber returns the smallest packet number the next Seal
// accepts: one above the last packet sealed.
func (t *Transport) NextPacketNumber() uint64 { return t.nextPN }

// Open authenticates and decrypts the transport packet pkt in place. It
// picks the key set by the K flag, checks the packet number against that
// set's replay window before decrypting, and marks it in the window only
// after the tag verifies. It returns the plaintext packet (header and
// messages, tag removed), aliasing pkt, and its packet number. On error the
// packet must be dropped; its bytes may have been overwritten.
//
// The caller has already routed the packet (protocol id, peer ids, and on
// a datagram transport a zero length field). Any change to the header
// makes the tag fail, except to the payload length field, which the
// associated data takes as zero: Open accepts any value there.
//
// Open is PrepareOpen, OpenJob.Decrypt and FinishOpen in one call.
func (t *Transport) Open(pkt []byte, now time.Time) (plain []byte, pn uint64, err error) {
	job := &t.ojob
	if err := t.PrepareOpen(pkt, now, job); err != nil {
		return nil, 0, err
	}
	job.Decrypt()
	return t.FinishOpen(job, now)
}

// OpenJob is the decryption half of opening one packet, prepared by
// Transport.PrepareOpen: jobs of one Transport may decrypt concurrently
// with each other (each has its own nonce buffer and associated data), so
// a batch of received packets can be opened on several cores. The owner
// prepares a whole batch, runs every job's Decrypt, and only then calls
// FinishOpen for each in order; no other Transport method may run between
// the first PrepareOpen and the last Decrypt.
type OpenJob struct {
	pkt []byte
	pn  uint64
	cs  *noise.CipherState
	gen uint64 // the key set's installation number, checked by FinishOpen
	idx int8
	ok  bool
	ad  [wire.HeaderLen]byte
	nb  noise.NonceBuf
}

// PrepareOpen does everything of Open before the decryption: the checks,
// the key set by the K flag, the replay window's check (not yet its
// update). It fills job for Decrypt.
func (t *Transport) PrepareOpen(pkt []byte, now time.Time, job *OpenJob) error {
	if len(pkt) < wire.Overhead {
		return ErrPacketTooShort
	}
	f := wire.Flags(pkt[wire.OffFlags])
	if f&wire.FlagHandshake != 0 {
		return ErrNotTransport
	}
	if binary.LittleEndian.Uint64(pkt[wire.OffProtocolID:]) != t.suite.IDWord() {
		return ErrAuth // another suite's packet: a session never mixes them (PROTOCOL.md §2.1)
	}
	t.expire(now)
	idx := t.forPhase(f&wire.FlagKeyPhase != 0)
	if idx == none {
		return ErrNoKeys
	}
	ks := &t.sets[idx]
	pn := binary.LittleEndian.Uint64(pkt[wire.OffPacketNumber:])
	if !ks.window.Check(pn) || ks.opened >= t.limits.RejectAfterMessages {
		return ErrReplay
	}
	// Field by field, as Prepare does (nb is scratch, ad is filled next):
	// a whole literal was built on the stack and copied 16 bytes at a time
	// from narrower stores, which stalls store-to-load forwarding.
	job.pkt, job.pn, job.cs, job.gen, job.idx, job.ok = pkt, pn, &ks.recv, ks.gen, idx, false
	cryptoHeader(&job.ad, pkt)
	return nil
}

// Decrypt authenticates and decrypts the job's packet in place. The zero
// OpenJob (a packet PrepareOpen refused) fails, and FinishOpen drops it.
func (j *OpenJob) Decrypt() {
	if j.cs == nil {
		j.ok = false
		return
	}
	_, err := j.cs.DecryptAtWith(&j.nb, j.pkt[wire.HeaderLen:wire.HeaderLen], j.pn, j.ad[:], j.pkt[wire.HeaderLen:])
	j.ok = err == nil
}

// FinishOpen completes a decrypted job: it marks the packet number in the
// replay window and counts the packet, confirms newer keys the peer has
// started to use, and returns the plaintext packet (aliasing the job's
// packet, tag removed) and its packet number, as Open does.
func (t *Transport) FinishOpen(job *OpenJob, now time.Time) (plain []byte, pn uint64, err error) {
	if !job.ok {
		return nil, 0, ErrAuth
	}
	idx := job.idx
	ks := &t.sets[idx]
	if !ks.inUse || ks.gen != job.gen {
		return nil, 0, ErrNoKeys // its keys were retired since PrepareOpen
	}
	if !ks.window.Accept(job.pn) {
		return nil, 0, ErrReplay
	}
	ks.opened++
	if ks.firstRecv.IsZero() {
		ks.firstRecv = now
		t.expiryChecked = time.Time{}
	}
	if idx == t.next {
		// Key confirmation: the peer has the new keys and uses them.
		t.drop(&t.prev)
		t.prev, t.cur, t.next = t.cur, t.next, none
		t.phase, t.phaseStarted = ks.phase, true
	}
	return job.pkt[:len(job.pkt)-wire.TagLen], job.pn, nil
}

// NeedsRekey reports whether the owner should start a rekey handshake now:
// the current keys have sent RekeyAfterMessages packets, or are
// RekeyAfterTime old (if this side initiated their handshake) or
// RekeyAfterTime + (RejectAfterTime − RekeyAfterTime)/2 old (if it
// answered it). It reports false when there are no current keys, newer
// keys are waiting for confirmation, or the current keys come from this
// side's handshake and the peer has not sent a packet under them yet.
func (t *Transport) NeedsRekey(now time.Time) bool {
	t.expire(now)
	if t.cur == none || t.next != none {
		return false
	}
	ks := &t.sets[t.cur]
	if ks.initiator && ks.opened == 0 {
		// Keys from our own handshake that the peer has not used yet: it
		// may not have them confirmed, and packets under them may still
		// wait in its queue. A rekey now would make it drop those keys
		// (Install replaces unconfirmed ones) and derive the next key
		// phase from keys older than ours, so the two ends would disagree
		// on the K bit for good. As RFC 9001 §6.1 says of QUIC key
		// updates, the next one waits until the peer has shown it has
		// the current keys: here, its first packet under them.
		return false
	}
	if ks.sealed >= t.limits.RekeyAfterMessages {
		return true
	}
	after := t.limits.RekeyAfterTime
	if !ks.initiator {
		after += (t.limits.RejectAfterTime - t.limits.RekeyAfterTime) / 2
	}
	return now.Sub(ks.created) >= after
}

// KeySets returns how many key sets the transport has installed: 1 for the
// first handshake, plus one per rekey.
func (t *Transport) KeySets() uint64 { return t.installed }

// Confirmed reports whether the transport has current keys to send with.
func (t *Transport) Confirmed() bool { return t.cur != none }

// Suite returns the session's construction.
func (t *Transport) Suite() wire.Suite { return t.suite }

// Peer returns the session peer's static public key.
func (t *Transport) Peer() wire.PublicKey { return t.peer }

// LocalID returns this side's peer id for the session.
func (t *Transport) LocalID() wire.PeerID { return t.localID }

// RemoteID returns the peer's id for the session.
func (t *Transport) RemoteID() wire.PeerID { return t.remoteID }

// Close erases every key. Seal and Open fail afterwards.
func (t *Transport) Close() {
	t.drop(&t.cur)
	t.drop(&t.prev)
	t.drop(&t.next)
}

// forPhase returns the key set for packets with key phase k, or none.
func (t *Transport) forPhase(k bool) int8 {
	for _, i := range [...]int8{t.cur, t.next, t.prev} {
		if i != none && t.sets[i].phase == k {
			return i
		}
	}
	return none
}

// expire drops key sets that are RejectAfterTime old, and previous keys
// KeepPreviousFor after current opened its first packet.
func (t *Transport) expire(now time.Time) {
	if now == t.expiryChecked {
		return
	}
	t.expiryChecked = now
	for _, p := range [...]*int8{&t.cur, &t.prev, &t.next} {
		if *p != none && now.Sub(t.sets[*p].created) >= t.limits.RejectAfterTime {
			t.drop(p)
		}
	}
	if t.prev != none && t.cur != none {
		if first := t.sets[t.cur].firstRecv; !first.IsZero() && now.Sub(first) >= t.limits.KeepPreviousFor {
			t.drop(&t.prev)
		}
	}
}

// drop erases the key set *p refers to and sets *p to none.
func (t *Transport) drop(p *int8) {
	if *p == none {
		return
	}
	t.expiryChecked = time.Time{}
	ks := &t.sets[*p]
	ks.send.Clear()
	ks.recv.Clear()
	*ks = keySet{}
	*p = none
}

// free returns the index of an unused key set. Install drops previous and
// next first, so at most current is in use.
func (t *Transport) free() int8 {
	for i := range t.sets {
		if !t.sets[i].inUse {
			return int8(i)
		}
	}
	panic("secure: no free key set")
}
