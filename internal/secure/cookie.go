package secure

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"io"
	"net/netip"
	"time"

	"github.com/havenproto/haven/wire"
	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// cookieJar is a responder's cookie machinery (docs/PROTOCOL.md §7.4): a
// random secret replaced every rotation period, the previous secret still
// accepted, and the XChaCha20-Poly1305 key that seals cookie replies. It is
// guarded by the Responder's mutex.
type cookieJar struct {
	rotation  time.Duration
	cur, prev keyedMAC // BLAKE2s-128 keyed by the current and previous secret
	curOK     bool
	prevOK    bool
	rotated   time.Time // when cur was drawn
	aead      cipher.AEAD

	addr    [16 + 2]byte // scratch: IP address bytes || u16le(port)
	cookie  [wire.MACLen]byte
	mac     [wire.MACLen]byte
	mac2    keyedMAC // oneMAC scratch for mac2
	scratch [blake2s.Size]byte
}

func newCookieJar(cookieKey *[blake2s.Size]byte, rotation time.Duration) *cookieJar {
	aead, err := chacha20poly1305.NewX(cookieKey[:])
	if err != nil {
		panic("secure: chacha20poly1305.NewX: " + err.Error())
	}
	return &cookieJar{rotation: rotation, aead: aead}
}

// refresh replaces the secret when it is a rotation period old, keeping the
// old one as previous unless that is two periods old too.
func (j *cookieJar) refresh(now time.Time, rand io.Reader) error {
	age := now.Sub(j.rotated)
	if j.curOK && age < j.rotation && age >= 0 {
		return nil
	}
	var secret [blake2s.Size]byte
	if _, err := io.ReadFull(rand, j.scratch[:]); err != nil {
		return ErrRandom
	}
	copy(secret[:], j.scratch[:])
	clear(j.scratch[:])
	if j.curOK && age >= 0 && age < 2*j.rotation {
		j.prev, j.prevOK = j.cur, true
	} else {
		j.prev, j.prevOK = keyedMAC{}, false
	}
	j.cur = keyedMAC{}
	j.cur.init(secret[:])
	clear(secret[:])
	j.curOK, j.rotated = true, now
	return nil
}

// compute sets j.cookie = BLAKE2s-128(secret, ip || u16le(port)) for the
// secret of m. IPv4-mapped IPv6 addresses count as IPv4; zones are ignored.
func (j *cookieJar) compute(m *keyedMAC, src netip.AddrPort) {
	a := src.Addr().Unmap()
	var n int
	if a.Is4() {
		v4 := a.As4()
		n = copy(j.addr[:], v4[:])
	} else {
		v6 := a.As16()
		n = copy(j.addr[:], v6[:])
	}
	binary.LittleEndian.PutUint16(j.addr[n:], src.Port())
	m.compute(&j.cookie, j.addr[:n+2])
}

// validMAC2 reports whether the initiation's mac2 was made with a cookie
// for src under the current or the previous secret.
func (j *cookieJar) validMAC2(pkt []byte, src netip.AddrPort) bool {
	got := pkt[wire.InitMAC2Offset:wire.InitPacketLen]
	ok := false
	for _, s := range [...]struct {
		m  *keyedMAC
		ok bool
	}{{&j.cur, j.curOK}, {&j.prev, j.prevOK}} {
		if !s.ok {
			continue
		}
		j.compute(s.m, src)
		oneMAC(&j.mac, j.cookie[:], pkt[:wire.InitMAC2Offset], &j.mac2)
		if subtle.ConstantTimeCompare(j.mac[:], got) == 1 {
			ok = true
		}
	}
	clear(j.cookie[:])
	return ok
}

// appendReply appends a COOKIE_REPLY to the initiation pkt (header h) to
// out: a random nonce and the cookie for src under the current secret,
// sealed with the initiation's mac1 as associated data.
func (j *cookieJar) appendReply(out, pkt []byte, h *wire.Header, self wire.AuthTag, src netip.AddrPort,
	rand io.Reader) ([]byte, error) {
	rh := wire.Header{Suite: h.Suite, Flags: wire.FlagHandshake, Destination: h.Source, Source: wire.MakePeerID(self, 0)}
	b := rh.Append(out)
	mh := wire.MessageHeader{ID: wire.MsgCookieReply, Length: wire.CookieBodyLen}
	b = mh.Append(b)
	n := len(b)
	b = append(b, zeroNonce[:]...)
	if _, err := io.ReadFull(rand, b[n:n+wire.NonceLenX]); err != nil {
		return out, ErrRandom
	}
	j.compute(&j.cur, src)
	b = j.aead.Seal(b, b[n:n+wire.NonceLenX], j.cookie[:], pkt[wire.InitMAC1Offset:wire.InitMAC2Offset])
	clear(j.cookie[:])
	return b, nil
}

var zeroNonce [wire.NonceLenX]byte
