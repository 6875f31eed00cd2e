package secure

import (
	"bytes"
	"time"

	"github.com/havenproto/haven/internal/noise"
	"github.com/havenproto/haven/wire"
)

// Established is the outcome of a completed handshake, on either side: who
// the peer is, the peer ids of the session, the parameters in force and the
// transport keys. Hand it to NewTransport (a new session) or
// Transport.Install (a rekey), which take the keys; or call Discard.
type Established struct {
	// Initiator reports whether this side sent the initiation.
	Initiator bool
	// Suite is the construction the session speaks: its protocol id, peer-id
	// tags and AEAD (PROTOCOL.md §2.1).
	Suite wire.Suite
	// Rekey reports whether the handshake named an existing session: the
	// initiation's destination ephemeral value was not zero.
	Rekey bool
	// Peer is the peer's static public key, authenticated by the handshake.
	Peer wire.PublicKey
	// LocalID is this side's peer id for the session: the source id of the
	// packets it sends and the destination id of those it receives.
	LocalID wire.PeerID
	// RemoteID is the peer's id: the destination of the packets this side
	// sends.
	RemoteID wire.PeerID
	// LocalParams are the parameters this side announced, and PeerParams
	// those the peer announced. In both, AlignLog2 and FEC hold the values
	// in force for the session, as decided by the responder (§7.3).
	LocalParams, PeerParams wire.SessionParams
	// Created is when the keys were derived: the time passed to
	// HandleInitiation or HandleResponse. Key lifetimes count from it.
	Created time.Time
	// RTT is, on the initiator's side, the time from sending the newest
	// initiation (when Poll returned it) to its response: a round-trip
	// sample the session engine starts from instead of RFC 9002's
	// default 333 ms. It is unambiguous after retransmissions, because
	// only a response to the newest initiation completes the handshake
	// (Karn's problem, RFC 6298 §5, does not arise). Zero on the
	// responder's side.
	RTT time.Duration

	// ServiceServed is, on the initiator's side, the responder's answer to
	// HandshakeConfig.ServiceHint: it serves that service (or one whose
	// name has the same hint). False without a hint, and on the
	// responder's side.
	ServiceServed bool

	// The transport keys, held by value (no allocation); take moves them
	// out.
	send, recv noise.CipherState
}

// Align returns the message body alignment in force, in bytes.
func (e *Established) Align() int { return e.LocalParams.Align() }

// FEC returns the forward error correction scheme in force.
func (e *Established) FEC() uint8 { return e.LocalParams.FEC }

// Discard erases the keys of an Established that will not be installed.
func (e *Established) Discard() {
	e.send.Clear()
	e.recv.Clear()
}

// usable reports whether e still holds its keys.
func (e *Established) usable() bool { return e != nil && e.send.HasKey() }

// take moves the keys to send and recv, once: e is left without keys.
func (e *Established) take(send, recv *noise.CipherState) error {
	if !e.usable() {
		return ErrUsed
	}
	*send, *recv = e.send, e.recv
	e.send, e.recv = noise.CipherState{}, noise.CipherState{}
	return nil
}

// YieldsRekey decides between two rekey handshakes of one session that
// cross: it reports whether the side with static key local abandons its
// own pending rekey Initiator and answers the peer's initiation. Exactly
// one side yields: the one whose public key is the smaller byte string.
func YieldsRekey(local, peer wire.PublicKey) bool {
	return bytes.Compare(local[:], peer[:]) < 0
}

// decideAlign returns the alignment in force for an initiator's proposal:
// the proposal if the responder supports it, else 8 (log2 3).
func decideAlign(proposed uint8, supported uint8) uint8 {
	if proposed <= 4 && supported&(1<<proposed) != 0 {
		return proposed
	}
	return 3
}
