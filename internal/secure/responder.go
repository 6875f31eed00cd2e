package secure

import (
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/havenproto/haven/internal/noise"
	"github.com/havenproto/haven/wire"
)

// Responder answers handshake initiations addressed to one identity. It is
// long-lived (one per listening identity) and keeps no per-handshake state:
// every initiation is answered, or dropped, within one HandleInitiation
// call. Its memory is fixed at construction. It is safe for concurrent
// use; the Diffie-Hellman work of concurrent calls runs in parallel.
type Responder struct {
	id     *Identity
	cfg    ResponderConfig
	params wire.SessionParams // cfg.Params, validated

	mu     sync.Mutex // guards everything below, and reads from rand
	rand   io.Reader
	seed   [noise.DHLen]byte
	jar    *cookieJar
	rate   *rateTable
	stamps *stampTable
}

// ReplyKind says what a Reply carries.
type ReplyKind uint8

const (
	// ReplyResponse: a HANDSHAKE_RESPONSE; Reply.Session holds the keys.
	ReplyResponse ReplyKind = iota + 1
	// ReplyCookie: a COOKIE_REPLY; there is no session.
	ReplyCookie
)

// Reply is what HandleInitiation asks the caller to do: send Packet to the
// initiation's source address and, for a response, keep Session until the
// peer's first transport packet confirms it (NewTransport or
// Transport.Install).
type Reply struct {
	Kind ReplyKind
	// Packet is the reply, appended to the out buffer given to
	// HandleInitiation: 160 bytes for a response, 104 for a cookie reply,
	// always fewer than the 216 of the initiation.
	Packet []byte
	// Session holds the new session keys of a response, nil otherwise.
	// Session.Rekey tells a rekey (the initiation named the session with
	// its destination ephemeral value, Session.LocalID's) from a new
	// session.
	Session *Established
}

// NewResponder returns a responder for id. rand supplies cookie secrets,
// cookie nonces, ephemeral keys, ephemeral peer-id values and the keys of
// its hash tables; nil means crypto/rand.
func NewResponder(id *Identity, cfg ResponderConfig, rand io.Reader) (*Responder, error) {
	if id == nil {
		return nil, fmt.Errorf("%w: missing identity", ErrConfig)
	}
	cfg = cfg.withDefaults()
	if !validParams(cfg.Params) {
		return nil, fmt.Errorf("%w: responder session parameters out of range", ErrConfig)
	}
	r := &Responder{id: id, cfg: cfg, params: cfg.Params, rand: randReader(rand)}
	var keys [32]byte
	if _, err := io.ReadFull(r.rand, keys[:]); err != nil {
		return nil, ErrRandom
	}
	r.jar = newCookieJar(&id.cookieKey, cfg.CookieRotation)
	r.rate = newRateTable(cfg.RateTableSize, cfg.SourceRate, cfg.SourceBurst, [16]byte(keys[:16]))
	r.stamps = newStampTable(cfg.MaxPeers, cfg.FutureTolerance, [16]byte(keys[16:]))
	return r, nil
}

// Identity returns the responder's identity.
func (r *Responder) Identity() *Identity { return r.id }

// respWork holds the state of one HandleInitiation call that gets as far
// as the Noise read, its scratch and its result: one allocation for all.
type respWork struct {
	hs      noise.HandshakeState
	eph     noise.KeyPair // an ephemeral key pair drawn from a custom rand
	est     Established
	payload [wire.InitPayloadLen]byte
	params  [wire.RespPayloadLen]byte
	hdr     [wire.HeaderLen]byte // cryptoHeader scratch for the transcript
	mac     [wire.MACLen]byte
	mac1    keyedMAC // oneMAC scratch for the response's mac1
}

// HandleInitiation processes a HANDSHAKE_INIT packet pkt that arrived from
// src and returns the reply to send to src, appended to out (which must not
// overlap pkt; pass nil or a pooled buffer's [:0]).
//
// localEph is this side's ephemeral peer-id value for a new session, which
// the caller chooses unique among its sessions; 0 draws a random non-zero
// one. For a rekey (the initiation's destination ephemeral value is not
// zero) localEph is ignored and the session's value, the initiation's
// destination ephemeral value, is kept; the caller must check that such a
// session exists and belongs to Session.Peer before installing the keys.
//
// Any error means the initiation is dropped and nothing must be sent; the
// error is for logging. The checks run cheapest first, and mac1 is checked
// before any Diffie-Hellman work; under load (load.Overloaded, or the
// source's token bucket is empty) an initiation without a valid mac2 gets a
// cookie reply and nothing else. An authenticated initiator whose key
// ResponderConfig.Authorize refuses gets ErrUnauthorized: no reply.
func (r *Responder) HandleInitiation(out, pkt []byte, src netip.AddrPort, now time.Time, load LoadState,
	localEph uint32) (Reply, error) {
	h, err := parseHandshakeHeader(pkt, wire.InitPacketLen)
	if err != nil {
		return Reply{}, err
	}
	var mh wire.MessageHeader
	if mh.Parse(pkt[wire.HeaderLen:]) != nil || mh.ID != wire.MsgHandshakeInit || mh.Flags != 0 ||
		mh.Length != wire.InitBodyLen || mh.Arg != 0 {
		return Reply{}, ErrMalformed
	}
	if h.Destination.Auth() != r.id.tags[h.Suite] || h.Source.Ephemeral() == 0 {
		return Reply{}, ErrAddressing
	}
	rekey := h.Destination.Ephemeral() != 0

	if !r.id.verifyMAC1(pkt[:wire.InitMAC1Offset], pkt[wire.InitMAC1Offset:wire.InitMAC2Offset]) {
		return Reply{}, ErrBadMAC
	}
	r.mu.Lock()
	if err := r.jar.refresh(now, r.rand); err != nil {
		r.mu.Unlock()
		return Reply{}, err
	}
	limited := !r.rate.allow(src.Addr(), now)
	if (load.Overloaded || limited) && !r.jar.validMAC2(pkt, src) {
		b, err := r.jar.appendReply(out, pkt, &h, r.id.tags[h.Suite], src, r.rand)
		r.mu.Unlock()
		if err != nil {
			return Reply{}, err
		}
		return Reply{Kind: ReplyCookie, Packet: b[len(out):]}, nil
	}
	custom, err := drawEphemeral(r.rand, &r.seed)
	seed := r.seed // a copy: r.seed is shared, and cleared at once
	clear(r.seed[:])
	if err == nil && !rekey && localEph == 0 {
		localEph, err = wire.RandomEphemeralFrom(r.rand)
	}
	r.mu.Unlock()
	if err != nil {
		return Reply{}, ErrRandom
	}
	if rekey {
		localEph = h.Destination.Ephemeral()
	}
	w := new(respWork)
	var eph *noise.KeyPair
	if custom {
		w.eph, err = noise.KeyPairFrom(seed[:])
		if err != nil {
			return Reply{}, ErrRandom
		}
		eph = &w.eph
	}
	clear(seed[:])
	return r.respond(out, pkt, &h, w, eph, localEph, rekey, now)
}

// respond runs the Noise part of HandleInitiation in w, outside the lock
// except for the timestamp check.
func (r *Responder) respond(out, pkt []byte, h *wire.Header, w *respWork, eph *noise.KeyPair, localEph uint32,
	rekey bool, now time.Time) (reply Reply, err error) {
	defer func() {
		clear(w.payload[:])
		w.eph = noise.KeyPair{}
		if err != nil {
			w.hs.Erase() // a completed handshake has erased its keys itself
		}
	}()
	hs, plain, err := r.readInitiation(pkt, h.Suite, eph, w)
	if err != nil {
		return Reply{}, err
	}
	var ip wire.InitPayload
	if ip.Parse(plain) != nil {
		return Reply{}, ErrMalformed
	}
	peer, _ := hs.PeerStatic()
	if h.Suite.AuthTag(peer) != h.Source.Auth() {
		return Reply{}, ErrHandshakeAuth
	}
	// Authorization comes before the timestamp table, so that a refused
	// key leaves no entry there (ResponderConfig.Authorize).
	if r.cfg.Authorize != nil && !r.cfg.Authorize(peer) {
		return Reply{}, ErrUnauthorized
	}
	r.mu.Lock()
	fresh := r.stamps.accept(peer, ip.Time, now)
	r.mu.Unlock()
	if !fresh {
		return Reply{}, ErrReplayedInitiation
	}

	local := r.params
	local.AlignLog2 = decideAlign(ip.Params.AlignLog2, r.cfg.Alignments)
	// FEC: the initiator's proposal, which this implementation supports
	// whatever it is (PROTOCOL.md §7.3; Parse refused unknown schemes).
	local.FEC = ip.Params.FEC
	peerParams := ip.Params
	peerParams.AlignLog2 = local.AlignLog2

	rp := wire.RespPayload{Params: local}
	if ip.Service != 0 && r.cfg.Serves != nil && r.cfg.Serves(ip.Service) {
		rp.Flags = wire.RespServiceServed
	}
	rh := wire.Header{Suite: h.Suite, Flags: wire.FlagHandshake, Destination: h.Source,
		Source: wire.MakePeerID(r.id.tags[h.Suite], localEph)}
	b, err := appendResponse(out, hs, &rh, &rp, peer, w)
	if err != nil {
		return Reply{}, err
	}
	e := &w.est
	*e = Established{
		Suite:       h.Suite,
		Rekey:       rekey,
		Peer:        peer,
		LocalID:     rh.Source,
		RemoteID:    h.Source,
		LocalParams: local,
		PeerParams:  peerParams,
		Created:     now,
	}
	if err := hs.SplitInto(&e.send, &e.recv); err != nil {
		return Reply{}, ErrHandshakeAuth
	}
	return Reply{Kind: ReplyResponse, Packet: b[len(out):], Session: e}, nil
}

// readInitiation starts the responder's Noise handshake in w.hs (with eph
// as its ephemeral key; nil draws one) and reads the initiation pkt into
// w.payload, with the initiation's header (length field zeroed) mixed into
// the transcript first.
func (r *Responder) readInitiation(pkt []byte, suite wire.Suite, eph *noise.KeyPair, w *respWork) (*noise.HandshakeState, []byte, error) {
	hs := &w.hs
	err := hs.InitResponder(noise.Config{Static: &r.id.static, Prologue: prologue(suite), Suite: noiseSuites[suite],
		Ephemeral: eph})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if hs.MixHash(cryptoHeader(&w.hdr, pkt)) != nil {
		return nil, nil, ErrHandshakeAuth
	}
	const msgOff = wire.HeaderLen + wire.MsgHeaderLen
	plain, err := hs.ReadMessage(w.payload[:0], pkt[msgOff:wire.InitMAC1Offset])
	if err != nil {
		return nil, nil, ErrHandshakeAuth
	}
	return hs, plain, nil
}

// appendResponse appends the HANDSHAKE_RESPONSE with header rh, carrying
// the payload rp, to out: the Noise message 2 of hs (with the header mixed into
// the transcript first), mac1 keyed by the initiator's public key peer,
// and a zero mac2.
func appendResponse(out []byte, hs *noise.HandshakeState, rh *wire.Header, rp *wire.RespPayload,
	peer wire.PublicKey, w *respWork) ([]byte, error) {
	start := len(out)
	b := rh.Append(out)
	mh := wire.MessageHeader{ID: wire.MsgHandshakeResponse, Length: wire.RespBodyLen}
	b = mh.Append(b)
	if hs.MixHash(cryptoHeader(&w.hdr, b[start:])) != nil {
		return out, ErrHandshakeAuth
	}
	b, err := hs.WriteMessage(b, rp.Append(w.params[:0]))
	if err != nil {
		return out, ErrHandshakeAuth // a low-order initiator ephemeral: ee fails
	}
	mac1Key := deriveKey(labelMAC1, peer)
	oneMAC(&w.mac, mac1Key[:], b[start:], &w.mac1)
	b = append(b, w.mac[:]...)
	return append(b, zeroNonce[:wire.MACLen]...), nil
}
