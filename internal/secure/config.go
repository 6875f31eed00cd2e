package secure

import (
	"time"

	"github.com/havenproto/haven/internal/noise"
	"github.com/havenproto/haven/wire"
)

// Defaults of the handshake (docs/PROTOCOL.md §7.4, §7.6).
//
// The retransmission timer is chosen as TCP and QUIC choose theirs: with
// no RTT sample yet, QUIC assumes 333 ms and probes after 3 × that, about
// 1 s (RFC 9002 §6.2.2), and TCP's initial RTO is 1 s (RFC 6298 §2.1).
// Waits then double but stop growing at 2 s, so that a dial on a bad path
// keeps trying every two seconds rather than every 8, 16, 32 s. A response
// to the newest initiation or to the one before it completes the
// handshake, so any round trip shorter than two waits (at least 2.7 s
// after jitter) completes. The overall limit is 60 s: about thirty
// initiations, so that even with 30 % loss each way (a round trip then
// fails half the time) a handshake fails about once in 10^9, and at 50 %
// loss each way about once in 5,000; TCP gives up on
// a connect after about 2 minutes (Linux, 6 SYN retries) and WireGuard on
// a handshake after 90 s, while a dial has a person or a caller waiting,
// who can set a shorter or longer limit with a context or
// Dialer.Timeout.
const (
	// DefaultRetransmitBase is the delay before the first retransmission
	// of an initiation; later ones double it.
	DefaultRetransmitBase = time.Second
	// DefaultRetransmitMax caps the retransmission delay before jitter.
	DefaultRetransmitMax = 2 * time.Second
	// DefaultHandshakeTimeout is how long an Initiator tries in all.
	DefaultHandshakeTimeout = 60 * time.Second
	// DefaultCookieLifetime is how long a cookie is used for mac2, and how
	// often a responder replaces its cookie secret.
	DefaultCookieLifetime = 120 * time.Second
)

// HandshakeConfig tunes an Initiator. Zero fields take the defaults above;
// tests shorten them.
type HandshakeConfig struct {
	// RetransmitBase is the delay before the first retransmission; each
	// later delay doubles, up to RetransmitMax, and each is jittered by
	// ±1/3 of itself.
	RetransmitBase time.Duration
	// RetransmitMax caps the un-jittered retransmission delay.
	RetransmitMax time.Duration
	// Timeout is the time from NewInitiator after which Poll returns
	// ErrHandshakeTimeout.
	Timeout time.Duration
	// CookieLifetime is how long after its arrival a cookie is used for
	// mac2 (the protocol fixes 120 s).
	CookieLifetime time.Duration

	// Authorize, when not nil, is asked about the responder's static
	// public key before anything is built or sent: false makes
	// NewInitiator fail with ErrUnauthorized (a dial fails; a rekey is not
	// started). Noise IK already pins the responder's key, so this is
	// defence in depth: one policy for both roles of an endpoint.
	Authorize func(peer wire.PublicKey) bool

	// Suite is the construction the handshake, and the session it makes,
	// speaks (PROTOCOL.md §2.1). The zero value is ChaCha20-Poly1305. A
	// rekey must use its session's suite.
	Suite wire.Suite

	// ServiceHint names the stream service the initiator will open first
	// (wire.ServiceHint), or is 0: the responder then answers whether it
	// serves it (Established.ServiceServed), so that the first open need
	// not wait a round trip for its ACCEPT (PROTOCOL.md §7.2, §7.4).
	ServiceHint uint32
}

func (c HandshakeConfig) withDefaults() HandshakeConfig {
	if c.RetransmitBase <= 0 {
		c.RetransmitBase = DefaultRetransmitBase
	}
	if c.RetransmitMax <= 0 {
		c.RetransmitMax = DefaultRetransmitMax
	}
	c.RetransmitMax = max(c.RetransmitMax, c.RetransmitBase)
	if c.Timeout <= 0 {
		c.Timeout = DefaultHandshakeTimeout
	}
	if c.CookieLifetime <= 0 {
		c.CookieLifetime = DefaultCookieLifetime
	}
	return c
}

// Defaults of the responder.
const (
	// DefaultSourceRate is how many initiations per second one source IP
	// address may send before it has to present a cookie.
	DefaultSourceRate = 20
	// DefaultSourceBurst is how many initiations a quiet source may send at
	// once.
	DefaultSourceBurst = 5
	// DefaultRateTableSize is the number of per-source token buckets.
	DefaultRateTableSize = 4096
	// DefaultMaxPeers is the capacity of the per-peer timestamp table.
	DefaultMaxPeers = 4096
	// DefaultFutureTolerance bounds how far ahead of the responder's clock
	// an evicted peer's timestamp may hold back other peers (see
	// ResponderConfig.MaxPeers).
	DefaultFutureTolerance = 5 * time.Minute
)

// LoadState is what the caller tells Responder.HandleInitiation about its
// own load.
type LoadState struct {
	// Overloaded reports that the caller's queue of handshakes waiting to
	// be processed is over its threshold: every initiation without a valid
	// mac2 then gets a cookie reply instead of a response.
	Overloaded bool
}

// ResponderConfig configures a Responder. Zero fields take the defaults.
type ResponderConfig struct {
	// Params are the responder's own session parameters, sent in every
	// response. Their AlignLog2 and FEC fields are ignored: the response
	// carries the values decided for the session (docs/PROTOCOL.md §7.3).
	// The zero value means DefaultParams().
	Params wire.SessionParams

	// Alignments is the set of body alignments the responder supports, as
	// a bit mask of log2 values (bit i set: alignment 1<<i). Zero means all
	// of 1, 2, 4, 8 and 16. Alignment 8 is always supported: it is the
	// fallback every implementation must accept.
	Alignments uint8

	// SourceRate and SourceBurst set the per-source-IP token bucket: a
	// source may send SourceBurst initiations at once and SourceRate per
	// second after that; beyond it, it needs a cookie. They are capped at
	// 10^9 per second and 2^20.
	SourceRate, SourceBurst int

	// RateTableSize is the number of token buckets, rounded up to a power
	// of two. Sources are spread over them by a keyed hash; two sources
	// that meet in one busy bucket share it (fail closed: both may need
	// cookies sooner).
	RateTableSize int

	// MaxPeers bounds the table of the newest accepted timestamp per
	// initiator static key (rounded up to a multiple of 4; 4-way sets
	// chosen by a keyed hash). When a set is full, the entry accepted
	// longest ago is evicted and the set's floor is raised to its
	// timestamp: a key without an entry must then present a timestamp
	// above the floor. That keeps replays of the evicted key's old
	// initiations out, at the price that at capacity a new peer whose clock
	// runs behind the evicted one may be refused until its clock passes
	// the floor. To stop an attacker with many keys and far-future
	// timestamps from locking out a set for good, an evicted timestamp
	// raises the floor to at most FutureTolerance past the responder's
	// clock at the time it was accepted.
	MaxPeers int

	// FutureTolerance: see MaxPeers.
	FutureTolerance time.Duration

	// CookieRotation is how often the cookie secret is replaced (the
	// protocol fixes 120 s); cookies under the previous secret stay valid.
	CookieRotation time.Duration

	// Authorize, when not nil, decides which initiator static keys may
	// have a session; nil admits every key. It is called once the
	// initiation has authenticated (the Noise read decrypted the static
	// key and payload, and the source tag matches the key), before the
	// timestamp table, any session state or any reply: false drops the
	// initiation silently (ErrUnauthorized), as a forged one is dropped.
	// Rekey initiations are asked too. It runs outside the Responder's
	// lock, possibly on several goroutines at once, and must be fast.
	//
	// What a refused key observes (docs/PROTOCOL.md §7.7): silence,
	// except that while the responder is overloaded or the source's rate
	// limit is spent (which a sender can bring about by itself) an
	// initiation with a valid mac1 and no valid mac2 gets a COOKIE_REPLY,
	// which is sent before authentication is possible; the retry carrying
	// the cookie then gets silence. Only a sender that knows the
	// responder's public key can make a valid mac1.
	// A refused initiation costs its source one rate-limit token, as every
	// initiation with a valid mac1 does (authenticating it took the
	// Diffie-Hellman work the token pays for), and is recorded nowhere
	// else.
	Authorize func(peer wire.PublicKey) bool

	// Serves, when not nil, answers an initiation's service hint
	// (wire.ServiceHint of a stream service's name): whether a listener
	// for it exists. It is asked only for a non-zero hint, once the
	// initiation has authenticated and its timestamp is fresh, outside the
	// Responder's lock, and must be fast. Nil answers "not served".
	Serves func(hint uint32) bool
}

// DefaultParams returns the session parameters of a side with no special
// needs: default packet size, alignment 8, no FEC, 100 channels, 1 MiB per
// channel, 30 s idle timeout and 16 MiB per session.
func DefaultParams() wire.SessionParams {
	return wire.SessionParams{
		MaxPacketSize: wire.DefaultPacketSize,
		AlignLog2:     3,
		FEC:           wire.FECNone,
		MaxChannels:   100,
		ChannelWindow: 1 << 20,
		IdleTimeoutMs: 30_000,
		SessionWindow: 16 << 20,
	}
}

func (c ResponderConfig) withDefaults() ResponderConfig {
	if c.Params == (wire.SessionParams{}) {
		c.Params = DefaultParams()
	}
	c.Params.AlignLog2, c.Params.FEC = 3, wire.FECNone
	if c.Alignments == 0 {
		c.Alignments = 0x1f
	}
	c.Alignments |= 1 << 3
	if c.SourceRate <= 0 {
		c.SourceRate = DefaultSourceRate
	}
	c.SourceRate = min(c.SourceRate, int(time.Second)) // at least 1 ns per token
	if c.SourceBurst <= 0 {
		c.SourceBurst = DefaultSourceBurst
	}
	c.SourceBurst = min(c.SourceBurst, 1<<20)
	if c.RateTableSize <= 0 {
		c.RateTableSize = DefaultRateTableSize
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.FutureTolerance <= 0 {
		c.FutureTolerance = DefaultFutureTolerance
	}
	if c.CookieRotation <= 0 {
		c.CookieRotation = DefaultCookieLifetime
	}
	return c
}

// validParams reports whether p survives the wire's range checks.
func validParams(p wire.SessionParams) bool {
	var buf [wire.SessionParamsLen]byte
	var q wire.SessionParams
	return q.Parse(p.Append(buf[:0])) == nil
}

// Defaults of the transport limits (docs/PROTOCOL.md §7.6).
const (
	DefaultRekeyAfterTime             = 120 * time.Second
	DefaultRejectAfterTime            = 180 * time.Second
	DefaultRekeyAfterMessages  uint64 = 1 << 60
	DefaultRejectAfterMessages uint64 = noise.DefaultRejectAfter // 2^64 - 2^13 - 1
	DefaultKeepPreviousFor            = 5 * time.Second
)

// Limits are a Transport's key lifetimes. Zero fields take the defaults
// above; tests shorten them to milliseconds and small counts.
type Limits struct {
	// RekeyAfterTime: the age of the current keys at which NeedsRekey
	// reports true (plus a delay on the side that answered their
	// handshake; see the package documentation).
	RekeyAfterTime time.Duration
	// RejectAfterTime: the age after which keys are never used again.
	RejectAfterTime time.Duration
	// RekeyAfterMessages: the send count at which NeedsRekey reports true.
	RekeyAfterMessages uint64
	// RejectAfterMessages: packet numbers at or above it are never sent
	// nor accepted under one key set.
	RejectAfterMessages uint64
	// KeepPreviousFor: how long the previous keys stay usable for Open
	// after the current keys have opened their first packet.
	KeepPreviousFor time.Duration
	// KeyLog, when not nil, is given both directions' keys of every key
	// set installed, for decrypting captures (keylog.go, docs/KEYLOG.md).
	// A secret: nil, the default, logs nothing.
	KeyLog *KeyLog
}

func (l Limits) withDefaults() Limits {
	if l.RekeyAfterTime <= 0 {
		l.RekeyAfterTime = DefaultRekeyAfterTime
	}
	if l.RejectAfterTime <= 0 {
		l.RejectAfterTime = DefaultRejectAfterTime
	}
	l.RejectAfterTime = max(l.RejectAfterTime, l.RekeyAfterTime)
	if l.RekeyAfterMessages == 0 {
		l.RekeyAfterMessages = DefaultRekeyAfterMessages
	}
	if l.RejectAfterMessages == 0 || l.RejectAfterMessages > DefaultRejectAfterMessages {
		l.RejectAfterMessages = DefaultRejectAfterMessages
	}
	if l.KeepPreviousFor <= 0 {
		l.KeepPreviousFor = DefaultKeepPreviousFor
	}
	return l
}
