package noise

import "fmt"

// Config configures one side of an IK handshake.
type Config struct {
	// Static is the local static key pair s. Required on both sides.
	Static *KeyPair

	// RemoteStatic is the responder's static public key rs, which the
	// initiator knows in advance (the "<- s" pre-message of IK). Required
	// for the initiator; ignored by the responder, which learns the
	// initiator's key from message 1 (see PeerStatic).
	RemoteStatic [DHLen]byte

	// Prologue is mixed into h before the first message (§6). Both sides
	// must supply the same bytes or message 1 fails to authenticate.
	Prologue []byte

	// PSK, if non-empty, must be PSKLen bytes and selects IKpsk2: the psk
	// modifier after message 2's tokens (§9.4). Empty means plain IK.
	PSK []byte

	// Suite selects the cipher and hash functions. nil means DefaultSuite,
	// which is all Haven uses; the others exist for the test vectors.
	Suite *Suite

	// Ephemeral, if non-nil, is used instead of a fresh ephemeral key pair.
	// For test vectors only: reusing an ephemeral key destroys the
	// handshake's security.
	Ephemeral *KeyPair

	// Ahead, if set, is the ephemeral key pair being generated for this
	// handshake (GenerateAhead); the handshake takes it over, and drops it
	// if it fails first. Ignored when Ephemeral is set.
	Ahead Ahead
}

// token is one handshake pattern token (§7.1) or the psk token (§9.2).
type token uint8

const (
	tokE token = iota + 1
	tokS
	tokEE
	tokES
	tokSE
	tokSS
	tokPSK
)

// The IK pattern (§7.5) and its psk2 variant (§9.4); the pre-message
// "<- s" is handled in setup.
//
//	IK:
//	  <- s
//	  ...
//	  -> e, es, s, ss
//	  <- e, ee, se       (IKpsk2: e, ee, se, psk)
var (
	patternIK     = [][]token{{tokE, tokES, tokS, tokSS}, {tokE, tokEE, tokSE}}
	patternIKpsk2 = [][]token{{tokE, tokES, tokS, tokSS}, {tokE, tokEE, tokSE, tokPSK}}
)

// HandshakeState is the §5.3 object for one side of an IK handshake.
//
// Use: the initiator calls WriteMessage then ReadMessage, the responder
// ReadMessage then WriteMessage; then both call Split for the transport
// CipherStates, and may read HandshakeHash for channel binding (§11.2).
// MixHash binds application data (Haven's packet headers) to the next
// message; both sides must call it identically.
//
// A failed ReadMessage or WriteMessage leaves the state exactly as it was
// before the call (every field a message touches is restored), and before
// any MixHash made for that message since the previous one, so an
// initiator that receives a forged or corrupted message 2 can keep waiting
// for the genuine one, and a caller may retry. A HandshakeState is not
// safe for concurrent use.
//
// NewInitiator and NewResponder allocate the state; InitInitiator and
// InitResponder set up one that the caller keeps inside an object of its
// own, and may re-initialize it for the next handshake.
type HandshakeState struct {
	suite     *Suite
	initiator bool
	s         *KeyPair
	fixedE    *KeyPair
	psk       [PSKLen]byte
	hasPSK    bool
	pattern   [][]token
	overhead  []int // bytes each message adds beyond its payload
	split     bool
	lent      bool // Split handed out send and recv: the state cannot be re-initialized

	// The transport CipherStates that Split returns, kept here so that
	// Split allocates nothing.
	send, recv CipherState

	st hsState // everything a message mutates; restored when it fails

	// MixHash data bound to the next message (mixhash.go): h before the
	// first pending MixHash, restored if that message fails.
	preMix     [maxHashLen]byte
	mixPending bool

	dhOut [DHLen]byte // scratch for DH outputs; cleared after use

	// X25519 work running on helper goroutines (async.go): a DH for
	// token pendTok, and the ephemeral key pair of this side's next "e".
	pend    *dhTask
	pendTok token
	ahead   Ahead
	aheadES aheadDH // the initiator's "es", computed with ahead's key pair
}

// aheadDH is a DH output computed ahead of its token: out = DH(e, rs),
// for the initiator's "es" with the ephemeral public key e.
type aheadDH struct {
	out, e, rs [DHLen]byte
	ok         bool
}

// hsState is the part of a HandshakeState that processing a message
// changes. It is copied before each message and restored on failure.
type hsState struct {
	ss     SymmetricState
	e      KeyPair     // local ephemeral
	re     [DHLen]byte // remote ephemeral
	rs     [DHLen]byte // remote static
	haveRE bool        // re is known
	haveRS bool        // rs is known
	msg    int         // index of the next message
}

// NewInitiator starts the initiator side of an IK handshake
// (Initialize, §5.3): it knows the responder's static key in advance.
func NewInitiator(cfg Config) (*HandshakeState, error) {
	hs := new(HandshakeState)
	if err := hs.init(&cfg, true); err != nil {
		return nil, err
	}
	return hs, nil
}

// NewResponder starts the responder side of an IK handshake.
func NewResponder(cfg Config) (*HandshakeState, error) {
	hs := new(HandshakeState)
	if err := hs.init(&cfg, false); err != nil {
		return nil, err
	}
	return hs, nil
}

// InitInitiator is NewInitiator on caller-owned memory: it sets hs up for
// a new handshake, whatever it held (the zero value, or a handshake that
// completed, failed or was abandoned; its secrets are erased). A state
// whose Split handed out its CipherStates cannot be re-initialized, since
// they live inside it: that fails with ErrConfig and changes nothing
// (SplitInto does not have this limit). On any other error hs is left
// unusable.
func (hs *HandshakeState) InitInitiator(cfg Config) error { return hs.init(&cfg, true) }

// InitResponder is NewResponder on caller-owned memory, as InitInitiator.
func (hs *HandshakeState) InitResponder(cfg Config) error { return hs.init(&cfg, false) }

// Erase ends the handshake in hs, complete or not: it waits for any work
// on helper goroutines, erases the keys (chaining key, cipher key, the
// ephemeral key pair, psk) and leaves hs uninitialized, so that every
// later call but InitInitiator and InitResponder fails. CipherStates that
// Split handed out are not touched. Use it on a state dropped before its
// handshake completes; Split and SplitInto erase a completed one's keys.
func (hs *HandshakeState) Erase() {
	hs.dropPending()
	hs.ahead.Discard()
	hs.aheadES = aheadDH{}
	hs.st.ss.erase()
	hs.st.e = KeyPair{}
	clear(hs.psk[:])
	hs.fixedE = nil
	hs.pattern = nil
}

func (hs *HandshakeState) init(cfg *Config, initiator bool) error {
	if hs.lent {
		cfg.Ahead.Discard()
		return fmt.Errorf("%w: re-initializing a HandshakeState whose Split CipherStates are in use", ErrConfig)
	}
	hs.dropPending()
	hs.ahead.Discard()
	*hs = HandshakeState{}
	if err := hs.setup(cfg, initiator); err != nil {
		cfg.Ahead.Discard()
		hs.ahead.Discard()
		*hs = HandshakeState{}
		return err
	}
	return nil
}

// setup initializes the zero hs from cfg (Initialize, §5.3).
func (hs *HandshakeState) setup(cfg *Config, initiator bool) error {
	if !cfg.Static.valid() {
		return fmt.Errorf("%w: missing static key pair", ErrConfig)
	}
	if cfg.Ephemeral != nil && !cfg.Ephemeral.valid() {
		return fmt.Errorf("%w: invalid fixed ephemeral key pair", ErrConfig)
	}
	if len(cfg.PSK) != 0 && len(cfg.PSK) != PSKLen {
		return fmt.Errorf("%w: PSK is %d bytes, want %d", ErrConfig, len(cfg.PSK), PSKLen)
	}
	if initiator && isZero(cfg.RemoteStatic[:]) {
		return fmt.Errorf("%w: initiator needs the responder's static public key", ErrConfig)
	}
	if cfg.Ephemeral != nil {
		cfg.Ahead.Discard()
	}
	suite := cfg.Suite
	if suite == nil {
		suite = DefaultSuite
	}
	hs.suite = suite
	hs.initiator = initiator
	hs.s = cfg.Static
	hs.fixedE = cfg.Ephemeral
	hs.ahead = cfg.Ahead
	cfg.Ahead = Ahead{} // taken over
	hs.hasPSK = len(cfg.PSK) == PSKLen
	hs.pattern = patternIK
	hs.overhead = overheadIK[:]
	h0 := &suite.h0IK
	if hs.hasPSK {
		copy(hs.psk[:], cfg.PSK)
		hs.pattern = patternIKpsk2
		hs.overhead = overheadIKpsk2[:]
		h0 = &suite.h0IKpsk2
	}
	ss := &hs.st.ss
	ss.initHash(suite, h0)
	ss.MixHash(cfg.Prologue)

	// Pre-message "<- s": both sides hash the responder's static key.
	if initiator {
		hs.st.rs = cfg.RemoteStatic
		hs.st.haveRS = true
		ss.MixHash(hs.st.rs[:])
	} else {
		ss.MixHash(hs.s.pub[:])
	}
	return nil
}

// overheadIK and overheadIKpsk2 are the sizes of each message minus its
// payload: message 1 is e (32), encrypted s (32+16) and the payload tag
// (16); message 2 is e (32) and the payload tag (16). The psk2 modifier
// only changes keys, not sizes. TestOverhead checks them against the
// pattern tokens.
var (
	overheadIK     = [2]int{DHLen + DHLen + TagLen + TagLen, DHLen + TagLen}
	overheadIKpsk2 = overheadIK
)

// WriteMessage appends the next handshake message, carrying payload, to
// out and returns the extended slice (§5.3). The payload is encrypted in
// both IK messages, but message 1's payload can be replayed to the
// responder and is exposed if the responder's static key is later
// compromised (§7.7); keep secrets for later messages. out must not
// overlap payload.
func (hs *HandshakeState) WriteMessage(out, payload []byte) ([]byte, error) {
	res, err := hs.writeMessage(out, payload)
	hs.settleMix(err)
	return res, err
}

func (hs *HandshakeState) writeMessage(out, payload []byte) ([]byte, error) {
	if err := hs.checkTurn(true); err != nil {
		return nil, err
	}
	if hs.overhead[hs.st.msg]+len(payload) > MaxMessageLen {
		return nil, ErrMessageTooLong
	}
	saved := hs.st
	res, err := hs.write(out, payload)
	if err != nil {
		hs.dropPending() // before the restore: nothing may run on
		hs.aheadES = aheadDH{}
		hs.st = saved
		return nil, err
	}
	hs.advance()
	return res, nil
}

// ReadMessage processes the next handshake message from the peer and
// appends its decrypted payload to out (§5.3). On any failure (too short,
// too long, failed authentication, a low-order key) it returns an error
// and the state is unchanged. out must not overlap msg.
func (hs *HandshakeState) ReadMessage(out, msg []byte) ([]byte, error) {
	res, err := hs.readMessage(out, msg)
	hs.settleMix(err)
	return res, err
}

func (hs *HandshakeState) readMessage(out, msg []byte) ([]byte, error) {
	if err := hs.checkTurn(false); err != nil {
		return nil, err
	}
	if len(msg) > MaxMessageLen {
		return nil, ErrMessageTooLong
	}
	if len(msg) < hs.overhead[hs.st.msg] {
		return nil, ErrShortMessage
	}
	saved := hs.st
	res, err := hs.read(out, msg)
	if err != nil {
		hs.dropPending() // before the restore: nothing may run on
		hs.st = saved
		return nil, err
	}
	hs.advance()
	return res, nil
}

func (hs *HandshakeState) checkTurn(write bool) error {
	if !hs.ready() {
		return errNotInitialized
	}
	if hs.st.msg >= len(hs.pattern) {
		return ErrHandshakeComplete
	}
	// The initiator writes the even-numbered messages.
	initiatorWrites := hs.st.msg%2 == 0
	if write != (initiatorWrites == hs.initiator) {
		return ErrOutOfTurn
	}
	return nil
}

// advance moves to the next message and, after the last one, drops the
// ephemeral private key, which is no longer needed (§5.3 and forward
// secrecy).
func (hs *HandshakeState) advance() {
	hs.st.msg++
	if hs.st.msg == len(hs.pattern) {
		hs.st.e = KeyPair{}
	}
}

func (hs *HandshakeState) write(out, payload []byte) ([]byte, error) {
	ss := &hs.st.ss
	var err error
	hs.prefetch()
	toks := hs.pattern[hs.st.msg]
	for i, t := range toks {
		switch t {
		case tokE:
			if err := hs.takeEphemeral(); err != nil {
				return nil, err
			}
			out = append(out, hs.st.e.pub[:]...)
			if err := hs.mixEphemeral(hs.st.e.pub[:]); err != nil {
				return nil, err
			}
		case tokS:
			if out, err = ss.EncryptAndHash(out, hs.s.pub[:]); err != nil {
				return nil, err
			}
		default:
			if err := hs.mixToken(t, toks[i+1:]); err != nil {
				return nil, err
			}
		}
	}
	return ss.EncryptAndHash(out, payload)
}

func (hs *HandshakeState) read(out, msg []byte) ([]byte, error) {
	ss := &hs.st.ss
	toks := hs.pattern[hs.st.msg]
	for i, t := range toks {
		switch t {
		case tokE:
			if len(msg) < DHLen {
				return nil, ErrShortMessage
			}
			copy(hs.st.re[:], msg[:DHLen])
			msg = msg[DHLen:]
			hs.st.haveRE = true
			if err := hs.mixEphemeral(hs.st.re[:]); err != nil {
				return nil, err
			}
		case tokS:
			n := DHLen
			if ss.cs.HasKey() {
				n += TagLen
			}
			if len(msg) < n {
				return nil, ErrShortMessage
			}
			if _, err := ss.DecryptAndHash(hs.st.rs[:0], msg[:n]); err != nil {
				return nil, err
			}
			msg = msg[n:]
			hs.st.haveRS = true
		default:
			if err := hs.mixToken(t, toks[i+1:]); err != nil {
				return nil, err
			}
		}
	}
	return ss.DecryptAndHash(out, msg)
}

// mixEphemeral is the shared half of the "e" token: MixHash(e.pub) and,
// in a psk handshake, MixKey(e.pub) as well (§9.2).
func (hs *HandshakeState) mixEphemeral(pub []byte) error {
	hs.st.ss.MixHash(pub)
	if hs.hasPSK {
		return hs.st.ss.MixKey(pub)
	}
	return nil
}

// mixToken processes the DH and psk tokens, which read and write alike
// (§5.3, §9.2). "es" is DH(e, rs) for the initiator and DH(s, re) for the
// responder; "se" the reverse (dhInputs). rest are the tokens after t in
// the message, for overlapping the next DH (async.go).
func (hs *HandshakeState) mixToken(t token, rest []token) error {
	st := &hs.st
	switch t {
	case tokEE, tokES, tokSE:
		return hs.mixDHToken(t, rest)
	case tokSS:
		hs.prefetchEphemeral()  // the responder's next ephemeral key (async.go)
		return hs.mixStaticDH() // cached per key pair (sscache.go)
	case tokPSK:
		return st.ss.MixKeyAndHash(hs.psk[:])
	}
	return fmt.Errorf("noise: internal error: unknown token %d", t)
}

// mixDH is MixKey(DH(kp, pub)), refusing an all-zero DH output. pub is nil
// while the key is unknown.
func (hs *HandshakeState) mixDH(kp *KeyPair, pub *[DHLen]byte) error {
	if !kp.valid() || pub == nil {
		return fmt.Errorf("noise: internal error: DH with a missing key")
	}
	err := dh(&hs.dhOut, kp, pub)
	if err == nil {
		err = hs.st.ss.MixKey(hs.dhOut[:])
	}
	clear(hs.dhOut[:])
	return err
}

// Complete reports whether both handshake messages have been processed.
func (hs *HandshakeState) Complete() bool { return hs.ready() && hs.st.msg == len(hs.pattern) }

// ready reports whether hs was set up: made by NewInitiator or
// NewResponder, or by a successful InitInitiator or InitResponder. Every
// method refuses, without panicking, to work on any other state (the zero
// value, or one whose initialization failed).
func (hs *HandshakeState) ready() bool { return hs.pattern != nil }

// errNotInitialized reports a call on a HandshakeState that is not ready.
var errNotInitialized = fmt.Errorf("%w: HandshakeState not initialized", ErrConfig)

// Initiator reports whether this is the initiator's side.
func (hs *HandshakeState) Initiator() bool { return hs.initiator }

// ProtocolName returns the Noise protocol name this handshake runs, or ""
// for a state that is not initialized.
func (hs *HandshakeState) ProtocolName() string {
	if !hs.ready() {
		return ""
	}
	return hs.suite.ProtocolName(hs.hasPSK)
}

// PeerStatic returns the peer's static public key and true once it is
// known: from the start for the initiator (Config.RemoteStatic), after a
// successful ReadMessage of message 1 for the responder, which looks the
// peer up by it.
func (hs *HandshakeState) PeerStatic() ([DHLen]byte, bool) {
	if !hs.st.haveRS {
		return [DHLen]byte{}, false
	}
	return hs.st.rs, true
}

// HandshakeHash returns a copy of h (GetHandshakeHash, §5.2). After the
// handshake it is a unique, public identifier of the session that both
// sides share, for channel binding (§11.2): Suite.HashLen bytes.
func (hs *HandshakeState) HandshakeHash() []byte {
	if !hs.ready() {
		return nil
	}
	return append([]byte(nil), hs.st.ss.GetHandshakeHash()...)
}

// Split returns the transport CipherStates once the handshake is complete
// (§5.2, §5.3): send encrypts this side's messages, recv decrypts the
// peer's. For the initiator send is the spec's c1, for the responder c2.
// Split erases the chaining key and the psk, so it succeeds only once.
//
// send and recv live inside hs, so Split allocates nothing (their AEAD
// objects aside); they stay valid as long as the caller keeps them, and hs
// can then no longer be re-initialized. SplitInto writes them to the
// caller's memory instead.
func (hs *HandshakeState) Split() (send, recv *CipherState, err error) {
	if err := hs.SplitInto(&hs.send, &hs.recv); err != nil {
		return nil, nil, err
	}
	hs.lent = true
	return &hs.send, &hs.recv, nil
}

// SplitInto is Split writing the transport CipherStates to send and recv,
// which must not be in use (they are overwritten).
func (hs *HandshakeState) SplitInto(send, recv *CipherState) error {
	if !hs.Complete() {
		return ErrHandshakeIncomplete
	}
	if hs.split {
		return ErrAlreadySplit
	}
	c1, c2 := send, recv
	if !hs.initiator {
		c1, c2 = recv, send
	}
	if err := hs.st.ss.splitInto(c1, c2); err != nil {
		return err
	}
	hs.split = true
	hs.st.ss.erase()
	clear(hs.psk[:])
	return nil
}

// isZero reports, in constant time, whether b is all zeros.
func isZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}
