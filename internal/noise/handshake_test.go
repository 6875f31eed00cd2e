package noise

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"math"
	"testing"
)

const havenVector = "Noise_IK_25519_ChaChaPoly_BLAKE2s"

// vectorHandshake returns, for the named vector, a fresh responder, an
// initiator that has already written message 1, and the vector's two
// handshake messages.
func vectorHandshake(tb testing.TB, name string) (ini, resp *HandshakeState, msg1, msg2 []byte) {
	tb.Helper()
	v := findVector(tb, name)
	iniCfg, respCfg := vectorConfigs(tb, v)
	ini, err := NewInitiator(iniCfg)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err = NewResponder(respCfg)
	if err != nil {
		tb.Fatal(err)
	}
	m1, err := ini.WriteMessage(nil, v.Messages[0].Payload)
	if err != nil || !bytes.Equal(m1, v.Messages[0].Ciphertext) {
		tb.Fatalf("message 1 does not match the vector (%v)", err)
	}
	return ini, resp, v.Messages[0].Ciphertext, v.Messages[1].Ciphertext
}

// TestBitFlip flips every bit of both handshake messages in turn: each
// flip must be rejected. One receiver takes all the flips, which also
// checks that a failed ReadMessage leaves the state untouched: the genuine
// message still succeeds at the end.
func TestBitFlip(t *testing.T) {
	ini, resp, msg1, msg2 := vectorHandshake(t, havenVector)
	for _, c := range []struct {
		name string
		hs   *HandshakeState
		msg  []byte
	}{{"message1", resp, msg1}, {"message2", ini, msg2}} {
		t.Run(c.name, func(t *testing.T) {
			m := bytes.Clone(c.msg)
			rejected := 0
			for bit := 0; bit < len(m)*8; bit++ {
				m[bit/8] ^= 1 << (bit % 8)
				if _, err := c.hs.ReadMessage(nil, m); err == nil {
					t.Fatalf("flip of bit %d accepted", bit)
				}
				rejected++
				m[bit/8] ^= 1 << (bit % 8)
			}
			if rejected != len(m)*8 {
				t.Fatalf("rejected %d of %d flips", rejected, len(m)*8)
			}
			if _, err := c.hs.ReadMessage(nil, m); err != nil {
				t.Fatalf("genuine message after %d failures: %v", rejected, err)
			}
		})
		if c.name == "message1" {
			if _, err := resp.WriteMessage(nil, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestTruncation feeds every proper prefix of each handshake message.
func TestTruncation(t *testing.T) {
	ini, resp, msg1, msg2 := vectorHandshake(t, havenVector)
	for _, c := range []struct {
		name string
		hs   *HandshakeState
		msg  []byte
	}{{"message1", resp, msg1}, {"message2", ini, msg2}} {
		for n := 0; n < len(c.msg); n++ {
			_, err := c.hs.ReadMessage(nil, c.msg[:n])
			if !errors.Is(err, ErrShortMessage) && !errors.Is(err, ErrDecrypt) {
				t.Fatalf("%s prefix of %d bytes: err = %v, want ErrShortMessage or ErrDecrypt", c.name, n, err)
			}
			if n < c.hs.overhead[c.hs.st.msg] && !errors.Is(err, ErrShortMessage) {
				t.Fatalf("%s prefix of %d bytes: err = %v, want ErrShortMessage", c.name, n, err)
			}
		}
		if _, err := c.hs.ReadMessage(nil, c.msg); err != nil {
			t.Fatalf("%s after truncations: %v", c.name, err)
		}
		if c.name == "message1" {
			if _, err := resp.WriteMessage(nil, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// lowOrder holds X25519 public keys whose DH output is all zeros for
// every scalar: 0, 1, and a point of order 8 (RFC 7748 / Bernstein's list).
var lowOrder = [][DHLen]byte{
	{},
	{1},
	{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
}

func TestLowOrderPoint(t *testing.T) {
	_, resp, msg1, _ := vectorHandshake(t, havenVector)
	for _, p := range lowOrder {
		m := bytes.Clone(msg1)
		copy(m, p[:])
		if _, err := resp.ReadMessage(nil, m); !errors.Is(err, ErrLowOrderPoint) {
			t.Errorf("ephemeral %x: err = %v, want ErrLowOrderPoint", p[:4], err)
		}
	}
	// An initiator pointed at a low-order "static key" fails in es.
	s := mustGenerate(t)
	for _, p := range lowOrder[1:] {
		ini, err := NewInitiator(Config{Static: s, RemoteStatic: p})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ini.WriteMessage(nil, nil); !errors.Is(err, ErrLowOrderPoint) {
			t.Errorf("remote static %x: err = %v, want ErrLowOrderPoint", p[:4], err)
		}
	}
}

func mustGenerate(tb testing.TB) *KeyPair {
	tb.Helper()
	kp, err := GenerateKeyPair()
	if err != nil {
		tb.Fatal(err)
	}
	return kp
}

// handshakePair runs a full handshake with fresh ephemerals.
func handshakePair(tb testing.TB, iniCfg, respCfg Config) (iniSend, iniRecv, respSend, respRecv *CipherState) {
	tb.Helper()
	ini, err := NewInitiator(iniCfg)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := NewResponder(respCfg)
	if err != nil {
		tb.Fatal(err)
	}
	m1, err := ini.WriteMessage(nil, []byte("hello"))
	if err != nil {
		tb.Fatal(err)
	}
	if p, err := resp.ReadMessage(nil, m1); err != nil || string(p) != "hello" {
		tb.Fatalf("read 1: %q, %v", p, err)
	}
	m2, err := resp.WriteMessage(nil, []byte("welcome"))
	if err != nil {
		tb.Fatal(err)
	}
	if p, err := ini.ReadMessage(nil, m2); err != nil || string(p) != "welcome" {
		tb.Fatalf("read 2: %q, %v", p, err)
	}
	if !bytes.Equal(ini.HandshakeHash(), resp.HandshakeHash()) {
		tb.Fatal("handshake hashes differ")
	}
	iniSend, iniRecv, err = ini.Split()
	if err != nil {
		tb.Fatal(err)
	}
	respSend, respRecv, err = resp.Split()
	if err != nil {
		tb.Fatal(err)
	}
	return
}

func TestRoundTrip(t *testing.T) {
	is, rs := mustGenerate(t), mustGenerate(t)
	psk := make([]byte, PSKLen)
	rand.Read(psk)
	for _, withPSK := range []bool{false, true} {
		iniCfg := Config{Static: is, RemoteStatic: rs.PublicKey(), Prologue: []byte("haven/1")}
		respCfg := Config{Static: rs, Prologue: []byte("haven/1")}
		if withPSK {
			iniCfg.PSK, respCfg.PSK = psk, psk
		}
		iniSend, iniRecv, respSend, respRecv := handshakePair(t, iniCfg, respCfg)
		for i := 0; i < 4; i++ {
			ct, err := iniSend.EncryptWithAd(nil, []byte("ad"), []byte("ping"))
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := respRecv.DecryptWithAd(nil, []byte("ad"), ct); err != nil || string(pt) != "ping" {
				t.Fatalf("ping: %q %v", pt, err)
			}
			ct, err = respSend.EncryptWithAd(nil, nil, []byte("pong"))
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := iniRecv.DecryptWithAd(nil, nil, ct); err != nil || string(pt) != "pong" {
				t.Fatalf("pong: %q %v", pt, err)
			}
		}
	}
}

// TestMismatch: any disagreement in prologue, psk or responder key makes
// message 1 or 2 fail to authenticate.
func TestMismatch(t *testing.T) {
	is, rs, other := mustGenerate(t), mustGenerate(t), mustGenerate(t)
	psk1, psk2 := bytes.Repeat([]byte{1}, PSKLen), bytes.Repeat([]byte{2}, PSKLen)
	cases := []struct {
		name     string
		ini, rsp Config
		failAt   int // 1: responder reading message 1; 2: initiator reading 2
	}{
		{"prologue", Config{Prologue: []byte("a")}, Config{Prologue: []byte("b")}, 1},
		{"wrong responder", Config{RemoteStatic: other.PublicKey()}, Config{}, 1},
		{"psk value", Config{PSK: psk1}, Config{PSK: psk2}, 2},
		{"psk presence", Config{PSK: psk1}, Config{}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.ini.Static, c.rsp.Static = is, rs
			if c.ini.RemoteStatic == ([DHLen]byte{}) {
				c.ini.RemoteStatic = rs.PublicKey()
			}
			ini, err := NewInitiator(c.ini)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := NewResponder(c.rsp)
			if err != nil {
				t.Fatal(err)
			}
			m1, err := ini.WriteMessage(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = resp.ReadMessage(nil, m1)
			if c.failAt == 1 {
				if !errors.Is(err, ErrDecrypt) {
					t.Fatalf("message 1: err = %v, want ErrDecrypt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m2, err := resp.WriteMessage(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ini.ReadMessage(nil, m2); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("message 2: err = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestStateErrors(t *testing.T) {
	ini, resp, msg1, msg2 := vectorHandshake(t, havenVector)
	if _, err := ini.WriteMessage(nil, nil); !errors.Is(err, ErrOutOfTurn) {
		t.Errorf("initiator writing twice: %v", err)
	}
	if _, err := resp.WriteMessage(nil, nil); !errors.Is(err, ErrOutOfTurn) {
		t.Errorf("responder writing first: %v", err)
	}
	if _, _, err := ini.Split(); !errors.Is(err, ErrHandshakeIncomplete) {
		t.Errorf("early Split: %v", err)
	}
	if _, ok := resp.PeerStatic(); ok {
		t.Error("responder knows the peer before message 1")
	}
	if _, err := resp.ReadMessage(nil, msg1); err != nil {
		t.Fatal(err)
	}
	if _, err := resp.ReadMessage(nil, msg1); !errors.Is(err, ErrOutOfTurn) {
		t.Errorf("responder reading twice: %v", err)
	}
	if _, err := resp.WriteMessage(nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ini.ReadMessage(nil, msg2); err != nil {
		t.Fatal(err)
	}
	for _, hs := range []*HandshakeState{ini, resp} {
		if _, err := hs.WriteMessage(nil, nil); !errors.Is(err, ErrHandshakeComplete) {
			t.Errorf("write after completion: %v", err)
		}
		if _, err := hs.ReadMessage(nil, msg2); !errors.Is(err, ErrHandshakeComplete) {
			t.Errorf("read after completion: %v", err)
		}
		if _, _, err := hs.Split(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := hs.Split(); !errors.Is(err, ErrAlreadySplit) {
			t.Errorf("second Split: %v", err)
		}
		if hs.ProtocolName() != havenVector {
			t.Errorf("ProtocolName = %q", hs.ProtocolName())
		}
	}
}

func TestConfigErrors(t *testing.T) {
	s := mustGenerate(t)
	rs := mustGenerate(t).PublicKey()
	bad := []struct {
		name string
		cfg  Config
		ini  bool
	}{
		{"no static", Config{RemoteStatic: rs}, true},
		{"no remote static", Config{Static: s}, true},
		{"short psk", Config{Static: s, RemoteStatic: rs, PSK: make([]byte, 31)}, true},
		{"bad ephemeral", Config{Static: s, Ephemeral: &KeyPair{}}, false},
	}
	for _, c := range bad {
		var err error
		if c.ini {
			_, err = NewInitiator(c.cfg)
		} else {
			_, err = NewResponder(c.cfg)
		}
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", c.name, err)
		}
	}
	if _, err := NewKeyPair(make([]byte, 31)); !errors.Is(err, ErrConfig) {
		t.Errorf("NewKeyPair(31 bytes): %v", err)
	}
	for _, name := range []string{"Noise_XX_25519_ChaChaPoly_BLAKE2s", "Noise_IK_448_ChaChaPoly_BLAKE2s",
		"Noise_IKpsk0_25519_ChaChaPoly_BLAKE2s", "Noise_IK_25519_ChaChaPoly_MD5", "Noise_IK"} {
		if _, _, err := ParseProtocolName(name); !errors.Is(err, ErrUnknownProtocol) {
			t.Errorf("ParseProtocolName(%q): %v", name, err)
		}
	}
}

func TestKeyPairRoundTrip(t *testing.T) {
	kp := mustGenerate(t)
	kp2 := mustKeyPair(t, kp.PrivateKey())
	if kp.PublicKey() != kp2.PublicKey() {
		t.Fatal("public key differs after PrivateKey round trip")
	}
}

func TestMessageTooLong(t *testing.T) {
	ini, resp, _, _ := vectorHandshake(t, havenVector)
	if _, err := resp.ReadMessage(nil, make([]byte, MaxMessageLen+1)); !errors.Is(err, ErrMessageTooLong) {
		t.Errorf("reading a 65536-byte message: %v", err)
	}
	fresh, err := NewInitiator(Config{Static: ini.s, RemoteStatic: ini.st.rs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.WriteMessage(nil, make([]byte, MaxMessageLen-95)); !errors.Is(err, ErrMessageTooLong) {
		t.Errorf("writing a 65536-byte message: %v", err)
	}
	m, err := fresh.WriteMessage(nil, make([]byte, MaxMessageLen-96))
	if err != nil || len(m) != MaxMessageLen {
		t.Errorf("writing a 65535-byte message: len %d, %v", len(m), err)
	}
}

// TestOverhead derives each message's size overhead from the pattern
// tokens and compares it with the precomputed tables.
func TestOverhead(t *testing.T) {
	for _, c := range []struct {
		pattern  [][]token
		psk      bool
		overhead [2]int
	}{{patternIK, false, overheadIK}, {patternIKpsk2, true, overheadIKpsk2}} {
		keyed := false
		for i, msg := range c.pattern {
			size := 0
			for _, tok := range msg {
				switch tok {
				case tokE:
					size += DHLen
					keyed = keyed || c.psk
				case tokS:
					size += DHLen
					if keyed {
						size += TagLen
					}
				default:
					keyed = true
				}
			}
			if keyed {
				size += TagLen
			}
			if size != c.overhead[i] {
				t.Errorf("psk=%v message %d: overhead %d, table says %d", c.psk, i, size, c.overhead[i])
			}
		}
	}
}

// TestHMAC checks the allocation-free HMAC against crypto/hmac for every
// hash, over keys of HASHLEN bytes (the only length Noise uses), with
// messages on both sides of the length up to which BLAKE2s hashes on the
// stack (hmacInline).
func TestHMAC(t *testing.T) {
	for _, s := range suites[:4] {
		ss := NewSymmetricState(s, []byte("x"))
		n := s.hash.hashLen
		key := make([]byte, n)
		d1, d2 := make([]byte, 100), make([]byte, 7)
		for i := 0; i < 10; i++ {
			rand.Read(key)
			rand.Read(d1)
			rand.Read(d2)
			var out [maxHashLen]byte
			ss.hmac(&out, key, d1[:i*10], d2)
			m := hmac.New(s.hash.new, key)
			m.Write(d1[:i*10])
			m.Write(d2)
			if want := m.Sum(nil); !bytes.Equal(out[:n], want) {
				t.Fatalf("%s: HMAC mismatch", s.hash.name)
			}
		}
	}
}

func TestCipherStateEdges(t *testing.T) {
	is, rs := mustGenerate(t), mustGenerate(t)
	iniSend, _, _, _ := handshakePair(t, Config{Static: is, RemoteStatic: rs.PublicKey()}, Config{Static: rs})
	var empty CipherState
	if _, err := empty.EncryptAt(nil, 0, nil, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("EncryptAt without key: %v", err)
	}
	// Without a key, EncryptWithAd and DecryptWithAd are the identity (§5.1).
	if c, err := empty.EncryptWithAd(nil, nil, []byte("x")); err != nil || string(c) != "x" || empty.Nonce() != 0 {
		t.Errorf("keyless EncryptWithAd: %q %v", c, err)
	}
	if p, err := empty.DecryptWithAd(nil, nil, []byte("x")); err != nil || string(p) != "x" {
		t.Errorf("keyless DecryptWithAd: %q %v", p, err)
	}
	// The zero value takes a key (ChaChaPoly).
	if err := empty.InitializeKey(make([]byte, KeyLen)); err != nil || !empty.HasKey() {
		t.Fatalf("zero-value InitializeKey: %v", err)
	}
	if err := empty.InitializeKey(make([]byte, 16)); !errors.Is(err, ErrConfig) {
		t.Errorf("16-byte key: %v", err)
	}

	// Nonce 2^64-1 is reserved.
	iniSend.SetNonce(math.MaxUint64 - 1)
	if _, err := iniSend.EncryptWithAd(nil, nil, nil); err != nil {
		t.Fatalf("nonce 2^64-2: %v", err)
	}
	if _, err := iniSend.EncryptWithAd(nil, nil, nil); !errors.Is(err, ErrNonceExhausted) {
		t.Errorf("nonce 2^64-1: %v", err)
	}
	if _, err := iniSend.DecryptAt(nil, math.MaxUint64, nil, make([]byte, 16)); !errors.Is(err, ErrNonceExhausted) {
		t.Errorf("DecryptAt 2^64-1: %v", err)
	}
}

// TestHandshakeTransport covers in-place sealing, explicit nonces, failed
// decryption leaving n alone, and Rekey, over a real handshake.
func TestHandshakeTransport(t *testing.T) {
	is, rs := mustGenerate(t), mustGenerate(t)
	send, _, _, recv := handshakePair(t, Config{Static: is, RemoteStatic: rs.PublicKey()}, Config{Static: rs})

	// Seal in place: dst = plaintext[:0] with room for the tag.
	buf := make([]byte, 5, 5+TagLen)
	copy(buf, "hello")
	n := send.Nonce()
	ct, err := send.EncryptWithAd(buf[:0], nil, buf)
	if err != nil || &ct[0] != &buf[0] {
		t.Fatalf("in-place seal: %v (same buffer: %v)", err, err == nil && &ct[0] == &buf[0])
	}
	// A forged copy fails and leaves recv's counter alone.
	forged := bytes.Clone(ct)
	forged[0] ^= 1
	if _, err := recv.DecryptWithAd(nil, nil, forged); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("forged: %v", err)
	}
	if recv.Nonce() != n {
		t.Fatalf("failed decryption moved n to %d", recv.Nonce())
	}
	if _, err := recv.DecryptWithAd(nil, nil, ct[:TagLen-1]); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("short ciphertext: %v", err)
	}
	pt, err := recv.DecryptWithAd(ct[:0], nil, ct) // open in place
	if err != nil || string(pt) != "hello" {
		t.Fatalf("in-place open: %q %v", pt, err)
	}

	// Explicit nonces, out of order.
	c7, _ := send.EncryptAt(nil, 7, []byte("hdr"), []byte("seven"))
	c5, _ := send.EncryptAt(nil, 5, []byte("hdr"), []byte("five"))
	if p, err := recv.DecryptAt(nil, 7, []byte("hdr"), c7); err != nil || string(p) != "seven" {
		t.Fatalf("DecryptAt 7: %q %v", p, err)
	}
	if p, err := recv.DecryptAt(nil, 5, []byte("hdr"), c5); err != nil || string(p) != "five" {
		t.Fatalf("DecryptAt 5: %q %v", p, err)
	}
	if _, err := recv.DecryptAt(nil, 6, []byte("hdr"), c5); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("DecryptAt with the wrong nonce: %v", err)
	}

	// Rekey on both sides keeps them in step and changes the key.
	before := send.k
	if err := send.Rekey(); err != nil {
		t.Fatal(err)
	}
	if err := recv.Rekey(); err != nil {
		t.Fatal(err)
	}
	if send.k == before {
		t.Fatal("Rekey did not change the key")
	}
	recv.SetNonce(send.Nonce())
	ct, _ = send.EncryptWithAd(nil, nil, []byte("after rekey"))
	if p, err := recv.DecryptWithAd(nil, nil, ct); err != nil || string(p) != "after rekey" {
		t.Fatalf("after rekey: %q %v", p, err)
	}
	send.Clear()
	if send.HasKey() {
		t.Fatal("Clear left a key")
	}
}
