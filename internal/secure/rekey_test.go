package secure

import (
	"testing"
	"time"

	"github.com/havenproto/haven/wire"
)

const ms = time.Millisecond

var shortLimits = Limits{RekeyAfterTime: 10 * ms, RejectAfterTime: 30 * ms, KeepPreviousFor: 5 * ms}

// rekey runs a rekey handshake initiated by the side of initTr (identity
// id) and answered by responder r for the side of respTr; both install the
// result. It returns nothing: the transports hold the new keys.
func rekey(t *testing.T, id *Identity, r *Responder, initTr, respTr *Transport, now time.Time) {
	t.Helper()
	rekeyIn(t, 0, id, r, initTr, respTr, now)
}

// rekeyIn is rekey for a session of suite s (0: the default).
func rekeyIn(t *testing.T, s wire.Suite, id *Identity, r *Responder, initTr, respTr *Transport, now time.Time) {
	t.Helper()
	in, err := NewInitiator(id, r.Identity().PublicKey(), initTr.LocalID().Ephemeral(), initTr.RemoteID().Ephemeral(),
		DefaultParams(), HandshakeConfig{Suite: s}, now, seeded(9))
	if err != nil {
		t.Fatal(err)
	}
	reply, err := r.HandleInitiation(nil, firstInit(t, in, now), srcAddr, now, LoadState{}, 0)
	if err != nil || reply.Kind != ReplyResponse {
		t.Fatalf("rekey initiation: %v", err)
	}
	if !reply.Session.Rekey || reply.Session.LocalID != respTr.LocalID() {
		t.Fatalf("rekey not recognised: %+v", reply.Session)
	}
	if err := respTr.Install(reply.Session, now); err != nil {
		t.Fatal(err)
	}
	e, err := in.HandleResponse(reply.Packet, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := initTr.Install(e, now); err != nil {
		t.Fatal(err)
	}
}

func kBit(pkt []byte) bool { return wire.Flags(pkt[wire.OffFlags])&wire.FlagKeyPhase != 0 }

func mustOpen(t *testing.T, tr *Transport, pkt []byte, now time.Time) {
	t.Helper()
	if _, _, err := open(tr, pkt, now); err != nil {
		t.Fatalf("Open at %v: %v", now.Sub(t0), err)
	}
}

func TestRekey(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	ti, tr := p.transports(t, shortLimits, at(0))
	pkt, _ := seal(t, ti, "hello", at(0))
	mustOpen(t, tr, pkt, at(0))
	if ti.NeedsRekey(at(10 * ms)) {
		t.Fatal("initiator wants a rekey before the responder sent a packet under its keys")
	}
	mustOpen(t, ti, first(t, tr, at(0)), at(0)) // the responder answers under them

	if ti.NeedsRekey(at(9*ms)) || tr.NeedsRekey(at(9*ms)) {
		t.Fatal("rekey wanted too early")
	}
	if !ti.NeedsRekey(at(10 * ms)) {
		t.Fatal("initiator does not want a rekey after RekeyAfterTime")
	}
	if tr.NeedsRekey(at(19*ms)) || !tr.NeedsRekey(at(20*ms)) {
		t.Fatal("responder's rekey time is not RekeyAfterTime + (RejectAfterTime-RekeyAfterTime)/2")
	}

	now := at(10 * ms)
	oldFromI, _ := seal(t, ti, "in flight i", now)
	oldFromR, _ := seal(t, tr, "in flight r", now)
	rekey(t, p.ini, p.r, ti, tr, now)

	// The responder keeps sending under the old keys until confirmation.
	stillOld, _ := seal(t, tr, "still old", now)
	stillOld2, _ := seal(t, tr, "still old 2", now)
	if kBit(oldFromI) || kBit(oldFromR) || kBit(stillOld) || kBit(stillOld2) {
		t.Fatal("old keys with K set")
	}
	if ti.NeedsRekey(now) || tr.NeedsRekey(now) {
		t.Fatal("rekey wanted right after a rekey")
	}
	// The initiator switched at once.
	newFromI, pn := seal(t, ti, "new i", now)
	if !kBit(newFromI) || pn == 0 {
		t.Fatalf("initiator after rekey: K %v pn %d (numbers continue across keys)", kBit(newFromI), pn)
	}
	mustOpen(t, ti, stillOld, now) // previous keys still open
	mustOpen(t, tr, newFromI, now) // confirmation: the responder switches
	newFromR, pn := seal(t, tr, "new r", now)
	if !kBit(newFromR) || pn == 0 {
		t.Fatalf("responder after confirmation: K %v pn %d", kBit(newFromR), pn)
	}
	mustOpen(t, ti, newFromR, now)

	// In-flight packets under the previous keys still open, both ways,
	// until KeepPreviousFor after the new keys received.
	mustOpen(t, tr, oldFromI, at(14*ms))
	mustOpen(t, ti, oldFromR, at(14*ms))
	late, _ := seal(t, ti, "late", at(14*ms))
	_ = late
	old2, _ := seal(t, tr, "x", at(14*ms))
	if !kBit(old2) {
		t.Fatal("responder went back to the old keys")
	}
	if _, _, err := open(ti, stillOld2, at(15*ms)); err != ErrNoKeys {
		t.Fatalf("previous keys after KeepPreviousFor: %v", err)
	}
	if _, _, err := open(tr, oldFromI, at(15*ms)); err != ErrNoKeys {
		t.Fatalf("previous keys after KeepPreviousFor: %v", err)
	}

	// The new keys live RejectAfterTime from their creation (10 ms).
	if _, _, err := ti.Seal(packet(ti, 1, "x"), at(39*ms)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ti.Seal(packet(ti, 1, "x"), at(40*ms)); err != ErrKeysExhausted {
		t.Fatalf("Seal after RejectAfterTime: %v", err)
	}
	if _, _, err := tr.Seal(packet(tr, 1, "x"), at(40*ms)); err != ErrKeysExhausted {
		t.Fatalf("Seal after RejectAfterTime: %v", err)
	}
	if _, _, err := open(tr, late, at(40*ms)); err != ErrNoKeys {
		t.Fatalf("Open after RejectAfterTime: %v", err)
	}
}

// TestPreviousExpiresByAge: previous keys are dropped RejectAfterTime after
// their creation even if the new keys never received anything.
func TestPreviousExpiresByAge(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	ti, tr := p.transports(t, shortLimits, at(0))
	mustOpen(t, tr, first(t, ti, at(0)), at(0))
	oldFromR, _ := seal(t, tr, "old", at(5*ms))
	oldFromR2, _ := seal(t, tr, "old2", at(5*ms))
	rekey(t, p.ini, p.r, ti, tr, at(10*ms))
	mustOpen(t, ti, oldFromR, at(29*ms))
	if _, _, err := open(ti, oldFromR2, at(30*ms)); err != ErrNoKeys {
		t.Fatalf("previous keys past RejectAfterTime: %v", err)
	}
	// The responder, still unconfirmed, cannot send once its old keys are
	// gone: it waits for the initiator's first packet.
	if _, _, err := tr.Seal(packet(tr, 1, "x"), at(30*ms)); err != ErrNotConfirmed {
		t.Fatalf("unconfirmed responder with expired current: %v", err)
	}
	mustOpen(t, tr, first(t, ti, at(31*ms)), at(31*ms))
	if _, _, err := tr.Seal(packet(tr, 1, "x"), at(31*ms)); err != nil {
		t.Fatal(err)
	}
}

func first(t *testing.T, tr *Transport, now time.Time) []byte {
	t.Helper()
	pkt, _ := seal(t, tr, "ping", now)
	return pkt
}

func TestKeysExhaustedWithoutRekey(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	ti, tr := p.transports(t, shortLimits, at(0))
	mustOpen(t, tr, first(t, ti, at(0)), at(0))
	if _, _, err := ti.Seal(packet(ti, 1, "x"), at(29*ms)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []*Transport{ti, tr} {
		if _, _, err := tt.Seal(packet(tt, 1, "x"), at(30*ms)); err != ErrKeysExhausted {
			t.Fatalf("Seal past RejectAfterTime: %v", err)
		}
		if tt.Confirmed() || tt.NeedsRekey(at(30*ms)) {
			t.Fatal("exhausted transport still confirmed or asking for a rekey")
		}
	}
}

func TestMessageLimits(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	lim := Limits{RekeyAfterMessages: 3, RejectAfterMessages: 5}
	ti, tr := p.transports(t, lim, at(0))
	for i := range 5 {
		if ti.NeedsRekey(at(0)) != (i >= 3) {
			t.Fatalf("NeedsRekey after %d packets: %v", i, !(i >= 3))
		}
		mustOpen(t, tr, first(t, ti, at(0)), at(0))
		if i == 0 {
			mustOpen(t, ti, first(t, tr, at(0)), at(0)) // the responder has the keys
		}
	}
	if _, _, err := ti.Seal(packet(ti, 1, "x"), at(0)); err != ErrKeysExhausted {
		t.Fatalf("Seal past RejectAfterMessages: %v", err)
	}
	rekey(t, p.ini, p.r, ti, tr, at(ms))
	pkt, pn := seal(t, ti, "fresh", at(ms))
	if pn != 5 {
		t.Fatalf("new keys sealed pn %d; packet numbers continue across keys (want 5)", pn)
	}
	mustOpen(t, tr, pkt, at(ms))
}

func TestInstallMismatch(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	ti, _ := p.transports(t, Limits{}, at(0))
	other, _ := p.handshake(t, 0x5555, 0, at(0)) // another session: other ids
	if err := ti.Install(other, at(0)); err != ErrSessionMismatch {
		t.Fatalf("Install of another session's keys: %v", err)
	}
	if err := ti.Install(nil, at(0)); err != ErrUsed {
		t.Fatal(err)
	}
	ti.Close()
	if _, _, err := ti.Seal(packet(ti, 1, "x"), at(0)); err != ErrKeysExhausted {
		t.Fatalf("Seal after Close: %v", err)
	}
}

// TestSimultaneousRekey: both sides start a rekey at once; YieldsRekey
// picks one handshake and the session continues on it.
func TestSimultaneousRekey(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	rA, err := NewResponder(p.ini, ResponderConfig{}, seeded(3)) // the initiator's own responder
	if err != nil {
		t.Fatal(err)
	}
	ti, tr := p.transports(t, Limits{}, at(0))
	mustOpen(t, tr, first(t, ti, at(0)), at(0))
	now := at(time.Second)
	inA, _ := NewInitiator(p.ini, p.resp.PublicKey(), ti.LocalID().Ephemeral(), ti.RemoteID().Ephemeral(),
		DefaultParams(), HandshakeConfig{}, now, seeded(4))
	inB, _ := NewInitiator(p.resp, p.ini.PublicKey(), tr.LocalID().Ephemeral(), tr.RemoteID().Ephemeral(),
		DefaultParams(), HandshakeConfig{}, now, seeded(5))
	initA, initB := firstInit(t, inA, now), firstInit(t, inB, now)
	aYields := YieldsRekey(p.ini.PublicKey(), p.resp.PublicKey())
	if aYields == YieldsRekey(p.resp.PublicKey(), p.ini.PublicKey()) {
		t.Fatal("YieldsRekey is not antisymmetric")
	}
	winIn, winTr, loseTr, loseR, winInit := inA, ti, tr, p.r, initA
	if aYields {
		winIn, winTr, loseTr, loseR, winInit = inB, tr, ti, rA, initB
	}
	// The loser answers the winner's initiation (and drops its own
	// initiator); the winner drops the loser's initiation unanswered.
	reply, err := loseR.HandleInitiation(nil, winInit, srcAddr, now, LoadState{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := loseTr.Install(reply.Session, now); err != nil {
		t.Fatal(err)
	}
	e, err := winIn.HandleResponse(reply.Packet, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := winTr.Install(e, now); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, loseTr, first(t, winTr, now), now)
	mustOpen(t, winTr, first(t, loseTr, now), now)
	if !kBit(first(t, loseTr, now)) {
		t.Fatal("loser did not switch to the new keys")
	}
}

// TestNoRekeyBeforeConfirmation: after a rekey of its own, the initiator
// wants no other until the responder has sent a packet under the new
// keys, however many it seals. A second rekey while the responder still
// holds the first one unconfirmed made the responder drop it and derive
// the next key phase from its older keys: the two ends then disagreed on
// the K bit for good, and every packet failed (a session died this way in
// the endpoint's rekey test, about one run in twenty).
func TestNoRekeyBeforeConfirmation(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	lim := Limits{RekeyAfterMessages: 3}
	ti, tr := p.transports(t, lim, at(0))
	mustOpen(t, tr, first(t, ti, at(0)), at(0))
	mustOpen(t, ti, first(t, tr, at(0)), at(0))
	for range 3 {
		mustOpen(t, tr, first(t, ti, at(0)), at(0))
	}
	if !ti.NeedsRekey(at(0)) {
		t.Fatal("no rekey after RekeyAfterMessages")
	}
	rekey(t, p.ini, p.r, ti, tr, at(ms))
	var queued [][]byte // under the new keys, not yet read by the responder
	for range 10 {
		pkt, _ := seal(t, ti, "new", at(ms))
		queued = append(queued, pkt)
		if ti.NeedsRekey(at(ms)) {
			t.Fatalf("initiator wants another rekey after %d packets the responder has not read", len(queued))
		}
	}
	for _, pkt := range queued {
		mustOpen(t, tr, pkt, at(ms)) // confirmation
	}
	mustOpen(t, ti, first(t, tr, at(ms)), at(ms))
	if !ti.NeedsRekey(at(ms)) {
		t.Fatal("no rekey once the responder used the new keys")
	}
	rekey(t, p.ini, p.r, ti, tr, at(2*ms))
	pkt, _ := seal(t, ti, "third keys", at(2*ms))
	mustOpen(t, tr, pkt, at(2*ms))
	mustOpen(t, ti, first(t, tr, at(2*ms)), at(2*ms))
}
