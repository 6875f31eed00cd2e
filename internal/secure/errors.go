package secure

import (
	"context"
	"errors"
)

// Errors. Every error this package returns is one of these sentinels, so
// callers compare with == or errors.Is, and returning one never allocates.
// The handshake errors describe a dropped packet: the caller may log them,
// but must send nothing in response.
var (
	// ErrMalformed: a handshake packet of the wrong size, with a bad
	// header or message header, or with authenticated contents out of range.
	ErrMalformed = errors.New("secure: malformed handshake packet")

	// ErrAddressing: a handshake packet whose peer ids do not fit: not
	// addressed to this identity or this handshake, or from an unexpected
	// sender, or with a zero ephemeral value where one is required.
	ErrAddressing = errors.New("secure: handshake packet with unexpected peer ids")

	// ErrBadMAC: mac1 does not verify (the sender does not know the
	// receiver's public key, or the packet was changed), or a response
	// carries a non-zero mac2.
	ErrBadMAC = errors.New("secure: handshake MAC does not verify")

	// ErrHandshakeAuth: the Noise message failed to authenticate (it, or
	// the packet header bound into its transcript, was forged or changed),
	// or the static key inside does not match the sender's authentication
	// tag.
	ErrHandshakeAuth = errors.New("secure: handshake authentication failed")

	// ErrReplayedInitiation: the initiation's timestamp is not newer than
	// one already accepted from the same static key.
	ErrReplayedInitiation = errors.New("secure: replayed or stale handshake initiation")

	// ErrUnauthorized: the peer's static key was refused by the
	// Authorize function of the ResponderConfig (the initiation is
	// dropped silently) or of the HandshakeConfig (NewInitiator fails).
	ErrUnauthorized = errors.New("secure: peer not authorized")

	// ErrBadCookie: a cookie reply that does not authenticate against the
	// last initiation sent.
	ErrBadCookie = errors.New("secure: cookie reply does not authenticate")

	// ErrUnexpected: a response or cookie reply that this Initiator is not
	// waiting for (already complete, or a second cookie reply for the same
	// initiation).
	ErrUnexpected = errors.New("secure: unexpected handshake packet")

	// ErrBadParams: the peer's session parameters are out of range, or the
	// responder decided an alignment or FEC scheme the initiator did not
	// offer. The handshake fails for good.
	ErrBadParams = errors.New("secure: invalid session parameters from peer")

	// ErrConfig: an invalid argument to a constructor.
	ErrConfig = errors.New("secure: invalid configuration")

	// ErrRandom: the random source failed.
	ErrRandom = errors.New("secure: random source failed")

	// ErrHandshakeTimeout: no valid response within the handshake timeout.
	// It is a net.Error whose Timeout method reports true, and it matches
	// context.DeadlineExceeded under errors.Is, like the net package's own
	// timeouts.
	ErrHandshakeTimeout error = handshakeTimeout{}
)

// Transport errors.
var (
	// ErrPacketTooShort: Seal got less than a header, or Open less than a
	// header and a tag.
	ErrPacketTooShort = errors.New("secure: packet too short")

	// ErrBufferTooSmall: the packet's capacity has no room for the tag.
	ErrBufferTooSmall = errors.New("secure: no capacity for the AEAD tag")

	// ErrNotTransport: the packet has the handshake flag set.
	ErrNotTransport = errors.New("secure: not a transport packet")

	// ErrNotConfirmed: this side answered the handshake of its only keys
	// and must not send before the peer's first packet confirms them.
	ErrNotConfirmed = errors.New("secure: keys not confirmed by the peer yet")

	// ErrKeysExhausted: the keys reached RejectAfterTime or
	// RejectAfterMessages and no newer keys exist: the session must close
	// with KEYS_EXHAUSTED.
	ErrKeysExhausted = errors.New("secure: session keys exhausted")

	// ErrNoKeys: no key set for the packet's key phase (expired, dropped,
	// or never installed).
	ErrNoKeys = errors.New("secure: no keys for the packet's key phase")

	// ErrReplay: the packet number is a duplicate, older than the replay
	// window, or at or above RejectAfterMessages.
	ErrReplay = errors.New("secure: replayed or out-of-window packet number")

	// ErrPacketNumber: Seal was given a packet number not above the last
	// one sealed; a nonce must never repeat (PROTOCOL.md §3.3).
	ErrPacketNumber = errors.New("secure: packet number not above the last one sealed")

	// ErrAuth: the transport packet's tag does not verify.
	ErrAuth = errors.New("secure: packet authentication failed")

	// ErrSessionMismatch: Install got keys for another peer or other ids.
	ErrSessionMismatch = errors.New("secure: keys belong to another session")

	// ErrUsed: an Established was already consumed or discarded.
	ErrUsed = errors.New("secure: established keys already used")
)

// handshakeTimeout is the type of ErrHandshakeTimeout.
type handshakeTimeout struct{}

func (handshakeTimeout) Error() string { return "secure: handshake timed out" }

// Timeout reports true (net.Error).
func (handshakeTimeout) Timeout() bool { return true }

// Temporary reports true, as for the net package's timeouts (net.Error).
func (handshakeTimeout) Temporary() bool { return true }

// Is makes errors.Is(ErrHandshakeTimeout, context.DeadlineExceeded) true.
func (handshakeTimeout) Is(target error) bool { return target == context.DeadlineExceeded }
