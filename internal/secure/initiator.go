package secure

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/havenproto/haven/internal/noise"
	"github.com/havenproto/haven/wire"
	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// Initiator runs one handshake attempt of the initiator role: a dial, or a
// rekey of an existing session. It is driven by the caller:
//
//	ini, err := secure.NewInitiator(id, peer, localEph, 0, params, cfg, time.Now(), nil)
//	for {
//		pkt, deadline, err := ini.Poll(time.Now())
//		if err != nil { return err } // ErrHandshakeTimeout, or a fatal error
//		if pkt != nil { send(pkt) }
//		wait for a handshake packet or the deadline:
//		  HANDSHAKE_RESPONSE: if e, err := ini.HandleResponse(p, now); err == nil { done(e) }
//		  COOKIE_REPLY:       ini.HandleCookieReply(p, now)
//	}
//
// Each initiation it sends is fresh (new ephemeral key and timestamp), and
// a response to the newest one or to the one before it completes the
// handshake (PROTOCOL.md §7.4): on a path whose round trip outlasts one
// retransmission interval the answer to an initiation arrives after the
// next has left, and would otherwise always be too late. A response to an
// older one fails to authenticate and is dropped. An Initiator is not safe
// for concurrent use.
type Initiator struct {
	id       *Identity
	peer     wire.PublicKey
	peerTag  wire.AuthTag
	localID  wire.PeerID // source of the initiations
	remoteID wire.PeerID // destination of the initiations
	params   wire.SessionParams
	cfg      HandshakeConfig
	rand     io.Reader

	peerMAC1 keyedMAC // mac1 of initiations: keyed by the peer's public key
	mac2     keyedMAC // oneMAC scratch for mac2

	cookieAEAD cipher.AEAD // opens cookie replies; built on first use

	// The handshake states of the newest initiation and of the one sent
	// before it, each in one of the two slots of hsMem, or nil. Each
	// initiation is built in the slot prev does not hold.
	hs, prev   *noise.HandshakeState
	hsMem      [2]noise.HandshakeState
	pkt        [wire.InitPacketLen]byte
	unsent     bool      // pkt is built but Poll has not returned it yet
	start      time.Time // NewInitiator's now: the timeout counts from it
	nextSend   time.Time
	sentAt     time.Time // when Poll returned the newest initiation
	prevSentAt time.Time // when Poll returned prev's initiation
	attempt    int       // retransmissions scheduled so far

	cookie      [wire.MACLen]byte
	cookieAt    time.Time
	haveCookie  bool
	cookieTaken bool // a cookie reply was accepted for the newest initiation

	done bool
	err  error // sticky failure

	est     Established               // the result, returned by HandleResponse
	payload [wire.InitPayloadLen]byte // plaintext scratch
	hdr     [wire.HeaderLen]byte      // cryptoHeader scratch for the transcript
	scratch [blake2s.Size]byte
	seed    [noise.DHLen]byte
	eph     noise.KeyPair // an ephemeral key pair drawn from a custom rand
	ahead   noise.Ahead   // the first initiation's ephemeral key pair, if generated ahead
}

// NewInitiator prepares a handshake from id to the responder whose static
// public key is peer, and builds the first initiation, which the first Poll
// returns.
//
// localEph is this side's ephemeral peer-id value for the session (non-zero;
// on a rekey, the session's). remoteEph is 0 for a new session, or the
// peer's ephemeral value of the session being rekeyed. params are this
// side's session parameters; AlignLog2 and FEC are the proposal the
// responder decides on. rand supplies ephemeral keys and jitter; nil means
// crypto/rand. If cfg.Authorize refuses peer, it returns ErrUnauthorized.
func NewInitiator(id *Identity, peer wire.PublicKey, localEph, remoteEph uint32, params wire.SessionParams,
	cfg HandshakeConfig, now time.Time, rand io.Reader) (*Initiator, error) {
	return NewInitiatorAhead(id, peer, localEph, remoteEph, params, cfg, now, rand, EphemeralAhead{})
}

// EphemeralAhead is an ephemeral key pair being generated on another
// goroutine for an initiation that is about to be built: a dialer starts
// it before it makes its socket and static key object, so that the two
// X25519 multiplications run at once. The zero value is none.
type EphemeralAhead struct{ a noise.Ahead }

// StartEphemeral starts generating an ephemeral key pair from crypto/rand
// for NewInitiatorAhead; with a single P it does nothing.
func StartEphemeral() EphemeralAhead { return EphemeralAhead{noise.GenerateAhead()} }

// EphemeralFor is the ephemeral key pair, with its "es", for an initiation
// to peer: the one PrepareFor made after the last handshake with peer, if
// ready; else, if start is set, one now made on a spare core as
// StartEphemeral does (with its "es" as well, as peer is known); else none.
func EphemeralFor(peer wire.PublicKey, start bool) EphemeralAhead {
	rs := [noise.DHLen]byte(peer)
	return EphemeralAhead{noise.AheadFor(&rs, start)}
}

// PrepareFor makes, on a goroutine of its own, the ephemeral key pair and
// "es" of the next initiation to peer (noise.Prepare): a dialer calls it
// when a handshake with peer has completed, so that its next dial to peer
// starts with both done.
func PrepareFor(peer wire.PublicKey) {
	rs := [noise.DHLen]byte(peer)
	noise.Prepare(&rs)
}

// PreparedTaken reports how many prepared initiations dials have taken
// (noise.PreparedTaken), for tests.
func PreparedTaken() uint64 { return noise.PreparedTaken() }

// Discard drops an EphemeralAhead that will not be used.
func (e *EphemeralAhead) Discard() { e.a.Discard() }

// NewInitiatorAhead is NewInitiator whose first initiation uses the
// ephemeral key pair ahead (taking it over; later initiations make their
// own). With a custom rand, ahead is discarded: every ephemeral key then
// comes from rand.
func NewInitiatorAhead(id *Identity, peer wire.PublicKey, localEph, remoteEph uint32, params wire.SessionParams,
	cfg HandshakeConfig, now time.Time, rand io.Reader, ahead EphemeralAhead) (*Initiator, error) {
	if rand != nil {
		ahead.Discard()
	}
	if id == nil || peer.IsZero() || localEph == 0 {
		ahead.Discard()
		return nil, fmt.Errorf("%w: missing identity, peer key or local ephemeral value", ErrConfig)
	}
	if cfg.Authorize != nil && !cfg.Authorize(peer) {
		ahead.Discard()
		return nil, ErrUnauthorized
	}
	if !validParams(params) {
		ahead.Discard()
		return nil, fmt.Errorf("%w: session parameters out of range", ErrConfig)
	}
	if !cfg.Suite.Valid() {
		ahead.Discard()
		return nil, fmt.Errorf("%w: unknown suite %d", ErrConfig, cfg.Suite)
	}
	i := &Initiator{
		id:       id,
		peer:     peer,
		peerTag:  cfg.Suite.AuthTag(peer),
		params:   params,
		cfg:      cfg.withDefaults(),
		rand:     randReader(rand),
		start:    now,
		nextSend: now,
	}
	i.localID = wire.MakePeerID(id.tags[cfg.Suite], localEph)
	i.remoteID = wire.MakePeerID(i.peerTag, remoteEph)
	peerMAC1Key := deriveKey(labelMAC1, peer)
	i.peerMAC1.init(peerMAC1Key[:])
	i.ahead = ahead.a
	if err := i.build(now); err != nil {
		return nil, err
	}
	return i, nil
}

// Poll returns the initiation to send now, if one is due, and the time at
// which Poll wants to be called again (a retransmission or the timeout).
// The first call returns the first initiation at once. pkt aliases the
// Initiator and is valid until the next Poll.
//
// After the handshake timeout Poll returns ErrHandshakeTimeout; after
// another fatal error (a broken random source, unacceptable parameters from
// an authenticated responder) it returns that error; once HandleResponse
// has succeeded it returns nil, a zero time and nil.
func (i *Initiator) Poll(now time.Time) (pkt []byte, deadline time.Time, err error) {
	if i.err != nil {
		return nil, time.Time{}, i.err
	}
	if i.done {
		return nil, time.Time{}, nil
	}
	end := i.start.Add(i.cfg.Timeout)
	if !now.Before(end) {
		i.fail(ErrHandshakeTimeout)
		return nil, time.Time{}, i.err
	}
	if !i.unsent && now.Before(i.nextSend) {
		return nil, earliest(i.nextSend, end), nil
	}
	if !i.unsent {
		if err := i.build(now); err != nil {
			i.fail(err)
			return nil, time.Time{}, err
		}
	}
	d, err := i.backoff()
	if err != nil {
		i.fail(err)
		return nil, time.Time{}, err
	}
	i.unsent = false
	i.sentAt = now
	i.nextSend = now.Add(d)
	return i.pkt[:], earliest(i.nextSend, end), nil
}

// backoff returns the jittered delay before the next retransmission:
// RetransmitBase·2^attempt, capped at RetransmitMax, times a uniform factor
// in [2/3, 4/3).
func (i *Initiator) backoff() (time.Duration, error) {
	d := i.cfg.RetransmitBase
	for k := 0; k < i.attempt && d < i.cfg.RetransmitMax; k++ {
		d *= 2
	}
	d = min(d, i.cfg.RetransmitMax)
	i.attempt++
	if _, err := io.ReadFull(i.rand, i.scratch[:8]); err != nil {
		return 0, ErrRandom
	}
	u := float64(binary.LittleEndian.Uint64(i.scratch[:8])>>11) / (1 << 53) // [0, 1)
	return time.Duration(float64(d) * (2 + 2*u) / 3), nil
}

// build writes a fresh initiation into i.pkt: new ephemeral key, new
// timestamp, mac1, and mac2 from a cookie younger than CookieLifetime. The
// newest initiation, if it was sent, becomes prev, and the state of the
// one before it is replaced.
func (i *Initiator) build(now time.Time) error {
	custom, err := drawEphemeral(i.rand, &i.seed)
	if err != nil {
		return err
	}
	var eph *noise.KeyPair
	if custom {
		i.eph, err = noise.KeyPairFrom(i.seed[:])
		clear(i.seed[:])
		if err != nil {
			return ErrRandom
		}
		eph = &i.eph
	}
	ahead := i.ahead
	i.ahead = noise.Ahead{} // used once; the handshake takes it over
	if i.hs != nil && !i.unsent {
		i.prev, i.prevSentAt = i.hs, i.sentAt
	}
	i.hs = nil
	hs := &i.hsMem[0]
	if i.prev == hs {
		hs = &i.hsMem[1]
	}
	err = hs.InitInitiator(noise.Config{
		Static:       &i.id.static,
		RemoteStatic: i.peer,
		Prologue:     prologue(i.cfg.Suite),
		Suite:        noiseSuites[i.cfg.Suite],
		Ephemeral:    eph,
		Ahead:        ahead,
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	ip := wire.InitPayload{Time: i.id.timestamp(now), Service: i.cfg.ServiceHint, Params: i.params}
	payload := ip.Append(i.payload[:0])

	h := wire.Header{Suite: i.cfg.Suite, Flags: wire.FlagHandshake, Destination: i.remoteID, Source: i.localID}
	b := h.Append(i.pkt[:0])
	mh := wire.MessageHeader{ID: wire.MsgHandshakeInit, Length: wire.InitBodyLen}
	b = mh.Append(b)
	// The header enters the transcript (PROTOCOL.md §7): the responder
	// mixes the same 40 bytes, length field zeroed, before reading.
	if err := hs.MixHash(cryptoHeader(&i.hdr, b)); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	b, err = hs.WriteMessage(b, payload)
	i.eph = noise.KeyPair{} // the handshake holds its copy
	if err != nil {
		// Only a low-order responder key makes the es or ss DH fail.
		hs.Erase()
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var mac [wire.MACLen]byte
	i.peerMAC1.computePacket(&mac, b[:wire.InitMAC1Offset])
	b = append(b, mac[:]...)
	mac = [wire.MACLen]byte{}
	if i.haveCookie && now.Sub(i.cookieAt) < i.cfg.CookieLifetime {
		oneMAC(&mac, i.cookie[:], b[:wire.InitMAC2Offset], &i.mac2)
	}
	b = append(b, mac[:]...)
	if len(b) != wire.InitPacketLen {
		panic("secure: initiation has the wrong size")
	}
	i.hs = hs
	i.unsent = true
	i.cookieTaken = false
	return nil
}

// HandleResponse consumes a HANDSHAKE_RESPONSE packet. On success the
// handshake is complete and the returned Established holds the session (it
// lives inside the Initiator's memory, which the caller may then drop). On
// failure the packet is dropped and the Initiator keeps waiting, except for
// ErrBadParams and ErrHandshakeTimeout, which end it. pkt is not retained.
func (i *Initiator) HandleResponse(pkt []byte, now time.Time) (*Established, error) {
	if i.err != nil {
		return nil, i.err
	}
	if i.done {
		return nil, ErrUnexpected
	}
	h, err := parseHandshakeHeader(pkt, wire.ResponsePacketLen)
	if err != nil {
		return nil, err
	}
	var m wire.HandshakeResponse
	if m.Parse(pkt[wire.HeaderLen:]) != nil {
		return nil, ErrMalformed
	}
	srcEph := h.Source.Ephemeral()
	if h.Suite != i.cfg.Suite || h.Destination != i.localID || h.Source.Auth() != i.peerTag || srcEph == 0 ||
		(i.remoteID.Ephemeral() != 0 && srcEph != i.remoteID.Ephemeral()) {
		return nil, ErrAddressing
	}
	if !i.id.verifyMAC1(pkt[:wire.RespMAC1Offset], m.MAC1[:]) || !isZero16(m.MAC2[:]) {
		return nil, ErrBadMAC
	}
	if !now.Before(i.start.Add(i.cfg.Timeout)) {
		i.fail(ErrHandshakeTimeout)
		return nil, i.err
	}
	// The newest initiation first, unless it has not been sent (then no
	// response to it can be genuine), then the one before it.
	hs, sentAt := i.hs, i.sentAt
	if i.unsent {
		hs = nil
	}
	var out []byte
	err = ErrUnexpected
	if hs != nil {
		out, err = i.readResponse(hs, pkt)
	}
	if err != nil && i.prev != nil {
		hs, sentAt = i.prev, i.prevSentAt
		out, err = i.readResponse(hs, pkt)
	}
	if err != nil {
		return nil, err
	}
	// From here on the response is authentic: a bad one ends the handshake.
	var rp wire.RespPayload
	peerParams := &rp.Params
	if rp.Parse(out) != nil || (peerParams.AlignLog2 != i.params.AlignLog2 && peerParams.AlignLog2 != 3) ||
		rp.Flags&wire.RespServiceServed != 0 && i.cfg.ServiceHint == 0 {
		i.fail(ErrBadParams)
		return nil, i.err
	}
	local := i.params
	local.AlignLog2, local.FEC = peerParams.AlignLog2, peerParams.FEC
	e := &i.est
	*e = Established{
		Initiator:   true,
		Suite:       i.cfg.Suite,
		Rekey:       i.remoteID.Ephemeral() != 0,
		Peer:        i.peer,
		LocalID:     i.localID,
		RemoteID:    h.Source,
		LocalParams: local,
		PeerParams:  *peerParams,
		Created:     now,
		RTT:         max(now.Sub(sentAt), 0),
		// The answer to a hint this initiation sent (a response to the
		// previous one carries the same hint: both were built from cfg).
		ServiceServed: rp.Flags&wire.RespServiceServed != 0,
	}
	if err := hs.SplitInto(&e.send, &e.recv); err != nil {
		i.fail(ErrHandshakeAuth)
		return nil, i.err
	}
	i.done = true
	for k := range i.hsMem {
		if &i.hsMem[k] != hs {
			i.hsMem[k].Erase() // the other initiation's secrets
		}
	}
	i.hs, i.prev = nil, nil
	clear(i.payload[:])
	return e, nil
}

// readResponse runs the Noise read of the response pkt in hs, with its
// header (length field zeroed) mixed into the transcript first, and
// returns the decrypted payload. A failure undoes the mix
// (noise.HandshakeState.MixHash), so the handshake can still complete with
// the genuine response.
func (i *Initiator) readResponse(hs *noise.HandshakeState, pkt []byte) ([]byte, error) {
	const msgOff = wire.HeaderLen + wire.MsgHeaderLen
	if hs.MixHash(cryptoHeader(&i.hdr, pkt)) != nil {
		return nil, ErrHandshakeAuth
	}
	out, err := hs.ReadMessage(i.payload[:0], pkt[msgOff:wire.RespMAC1Offset])
	if err != nil {
		return nil, ErrHandshakeAuth
	}
	return out, nil
}

// Cookie is a responder's cookie as an initiator received it: the value
// for mac2 and when it arrived (PROTOCOL.md §7.4). A cookie is bound to the
// initiator's source address, so it serves later handshakes with the same
// responder from the same socket.
type Cookie struct {
	value [wire.MACLen]byte
	at    time.Time
}

// Cookie returns the newest cookie the initiator received, if any, for
// the next handshake with the same responder from the same socket
// (UseCookie).
func (i *Initiator) Cookie() (Cookie, bool) {
	if !i.haveCookie {
		return Cookie{}, false
	}
	return Cookie{value: i.cookie, at: i.cookieAt}, true
}

// UseCookie gives the initiator a cookie from an earlier handshake with
// the same responder from the same socket, unless it holds a newer one.
// Its initiations carry mac2 from it while it is younger than
// CookieLifetime (the first one too, if not sent yet), so a responder
// under load, or rate-limiting the address, answers them at once instead
// of with a cookie reply: a client that connects often to one server
// pays the cookie round trip once per CookieLifetime, not per handshake.
func (i *Initiator) UseCookie(c Cookie, now time.Time) {
	if c.at.IsZero() || i.haveCookie && !c.at.After(i.cookieAt) || now.Sub(c.at) >= i.cfg.CookieLifetime {
		return
	}
	i.cookie, i.cookieAt, i.haveCookie = c.value, c.at, true
	if i.unsent && i.hs != nil {
		var mac [wire.MACLen]byte
		oneMAC(&mac, i.cookie[:], i.pkt[:wire.InitMAC2Offset], &i.mac2)
		copy(i.pkt[wire.InitMAC2Offset:wire.InitPacketLen], mac[:])
	}
}

// HandleCookieReply consumes a COOKIE_REPLY packet answering the newest
// initiation. The cookie is used for mac2 from the next initiation on, and
// that initiation is due at once: the reply proves the path works, and an
// initiation with a valid mac2 passes the responder's load and rate checks,
// so waiting for the backoff would only add a second to the handshake. A reply that does not
// authenticate against the newest initiation's mac1, or a second reply to
// the same initiation, is dropped with an error and changes nothing.
func (i *Initiator) HandleCookieReply(pkt []byte, now time.Time) error {
	if i.err != nil {
		return i.err
	}
	if i.done || i.unsent {
		return ErrUnexpected
	}
	h, err := parseHandshakeHeader(pkt, wire.CookiePacketLen)
	if err != nil {
		return err
	}
	var m wire.CookieReply
	if m.Parse(pkt[wire.HeaderLen:]) != nil {
		return ErrMalformed
	}
	if h.Suite != i.cfg.Suite || h.Destination != i.localID || h.Source != wire.MakePeerID(i.peerTag, 0) {
		return ErrAddressing
	}
	if i.cookieTaken {
		return ErrUnexpected
	}
	if i.cookieAEAD == nil {
		key := deriveKey(labelCookie, i.peer)
		aead, err := chacha20poly1305.NewX(key[:])
		if err != nil {
			panic("secure: chacha20poly1305.NewX: " + err.Error())
		}
		i.cookieAEAD = aead
	}
	const sealedOff = wire.HeaderLen + wire.MsgHeaderLen + wire.OffCookieSealed
	const nonceOff = wire.HeaderLen + wire.MsgHeaderLen + wire.OffCookieNonce
	cookie, err := i.cookieAEAD.Open(i.scratch[:0], pkt[nonceOff:sealedOff], pkt[sealedOff:wire.CookiePacketLen],
		i.pkt[wire.InitMAC1Offset:wire.InitMAC2Offset])
	if err != nil {
		return ErrBadCookie
	}
	copy(i.cookie[:], cookie)
	i.cookieAt, i.haveCookie, i.cookieTaken = now, true, true
	i.nextSend = now // retry now, with mac2
	return nil
}

// fail ends the handshake with err and erases its secrets.
func (i *Initiator) fail(err error) {
	if i.err == nil {
		i.err = err
	}
	i.hs, i.prev = nil, nil
	i.hsMem[0].Erase()
	i.hsMem[1].Erase()
	clear(i.payload[:])
}

// parseHandshakeHeader checks a handshake packet's size and header: the
// protocol id, reserved bits and the handshake form. The payload length
// field may hold any value: a stream transport sets it (PROTOCOL.md §8),
// dropping non-zero values on datagram transports is the socket layer's
// job (§6.1), and no cryptography covers it.
func parseHandshakeHeader(pkt []byte, size int) (wire.Header, error) {
	var h wire.Header
	if len(pkt) != size || h.Parse(pkt) != nil || !h.IsHandshake() {
		return h, ErrMalformed
	}
	return h, nil
}

// earliest returns the earlier of two times.
func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
