package noise

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

func hex32(tb testing.TB, s string) *[32]byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		tb.Fatalf("bad 32-byte hex %q", s)
	}
	return (*[32]byte)(b)
}

// TestX25519Vectors: the two scalar multiplications of RFC 7748 §5.2 (the
// second has the top bit of u set, which must be ignored) and the
// Diffie-Hellman example of §6.1, public keys included.
func TestX25519Vectors(t *testing.T) {
	for _, v := range []struct{ k, u, out string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
	} {
		var out [32]byte
		x25519(&out, hex32(t, v.k), hex32(t, v.u))
		if got := hex.EncodeToString(out[:]); got != v.out {
			t.Errorf("X25519(%.8s…, %.8s…) = %s, want %s", v.k, v.u, got, v.out)
		}
	}

	alice := hex32(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	bob := hex32(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
	alicePub := hex32(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	bobPub := hex32(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
	shared := hex32(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
	var out [32]byte
	for _, c := range []struct {
		name      string
		priv, pub *[32]byte
	}{{"alice", alice, alicePub}, {"bob", bob, bobPub}} {
		if x25519Base(&out, c.priv); out != *c.pub {
			t.Errorf("%s's public key (fixed base) = %x", c.name, out)
		}
		if x25519(&out, c.priv, &basePoint); out != *c.pub {
			t.Errorf("%s's public key (ladder from 9) = %x", c.name, out)
		}
	}
	if x25519(&out, alice, bobPub); out != *shared {
		t.Errorf("alice's shared secret = %x", out)
	}
	if x25519(&out, bob, alicePub); out != *shared {
		t.Errorf("bob's shared secret = %x", out)
	}
}

// basePoint is u = 9 (RFC 7748 §4.1).
var basePoint = [32]byte{9}

// TestX25519Iterated is the iterated test of RFC 7748 §5.2: k = u = 9,
// then repeatedly k, u = X25519(k, u), k. The 1,000,000-iteration value is
// not checked: it takes minutes.
func TestX25519Iterated(t *testing.T) {
	k, u := basePoint, basePoint
	for i := 1; i <= 1000; i++ {
		var r [32]byte
		x25519(&r, &k, &u)
		u, k = k, r
		switch i {
		case 1:
			if want := hex32(t, "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"); k != *want {
				t.Fatalf("after 1 iteration: %x", k)
			}
		case 1000:
			if want := hex32(t, "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"); k != *want {
				t.Fatalf("after 1,000 iterations: %x", k)
			}
		}
	}
}

// TestX25519CrossCheck compares x25519 and x25519Base with crypto/ecdh on
// random scalars and points: points that are public keys, and arbitrary
// 32-byte strings (which may be off the curve, on the twist, have the top
// bit set or be non-canonical, all of which X25519 must handle like
// crypto/ecdh does).
func TestX25519CrossCheck(t *testing.T) {
	n := 1000
	if testing.Short() || raceEnabled {
		n = 250
	}
	curve := ecdh.X25519()
	var k, u, got, pub [32]byte
	for i := 0; i < n; i++ {
		rand.Read(k[:])
		rand.Read(u[:])
		if i%2 == 0 { // a real public key
			peer, err := curve.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			copy(u[:], peer.PublicKey().Bytes())
		} else if i%10 == 1 { // a non-canonical u: p .. 2^255-1, top bit random
			u = [32]byte{0xed}
			for j := 1; j < 31; j++ {
				u[j] = 0xff
			}
			u[0] += byte(i/10) % 19
			u[31] = 0x7f | (u[31] & 0x80) | byte(i&0x80)
		}
		priv, err := curve.NewPrivateKey(k[:])
		if err != nil {
			t.Fatal(err)
		}
		x25519Base(&pub, &k)
		if !bytes.Equal(pub[:], priv.PublicKey().Bytes()) {
			t.Fatalf("public key of %x: %x, crypto/ecdh says %x", k, pub, priv.PublicKey().Bytes())
		}
		peer, err := curve.NewPublicKey(u[:])
		if err != nil {
			t.Fatal(err)
		}
		want, err := priv.ECDH(peer)
		x25519(&got, &k, &u)
		if err != nil { // crypto/ecdh refuses exactly the all-zero output
			if !isZero(got[:]) {
				t.Fatalf("X25519(%x, %x) = %x, crypto/ecdh refused it: %v", k, u, got, err)
			}
			continue
		}
		if !bytes.Equal(got[:], want) {
			t.Fatalf("X25519(%x, %x) = %x, crypto/ecdh says %x", k, u, got, want)
		}
	}
}

// TestX25519LowOrder: every low-order point gives the all-zero output for
// any scalar, which dh reports as ErrLowOrderPoint.
func TestX25519LowOrder(t *testing.T) {
	kp := mustGenerate(t)
	for _, p := range lowOrder {
		var out [32]byte
		x25519(&out, &kp.priv, &p)
		if !isZero(out[:]) {
			t.Errorf("low-order point %x: output %x", p[:4], out)
		}
		if err := dh(&out, kp, &p); err != ErrLowOrderPoint {
			t.Errorf("dh with low-order point %x: %v", p[:4], err)
		}
	}
}

// TestX25519Allocs: neither function allocates.
func TestX25519Allocs(t *testing.T) {
	k, u := basePoint, basePoint
	var out [32]byte
	if a := testing.AllocsPerRun(20, func() { x25519(&out, &k, &u) }); a != 0 {
		t.Errorf("x25519: %v allocations", a)
	}
	if a := testing.AllocsPerRun(20, func() { x25519Base(&out, &k) }); a != 0 {
		t.Errorf("x25519Base: %v allocations", a)
	}
}

// The benchmarks compare the X25519 operations of a handshake with the
// same work through crypto/ecdh: a shared secret from a parsed peer key,
// and a key pair from 32 random bytes.

func BenchmarkX25519(b *testing.B) {
	k, u := basePoint, *hex32(b, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
	k[5] = 0x5a
	var out [32]byte
	b.ReportAllocs()
	for b.Loop() {
		x25519(&out, &k, &u)
	}
}

func BenchmarkX25519ECDH(b *testing.B) {
	k, u := basePoint, *hex32(b, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
	k[5] = 0x5a
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		peer, err := ecdh.X25519().NewPublicKey(u[:])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := priv.ECDH(peer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkX25519Base(b *testing.B) {
	k := basePoint
	k[5] = 0x5a
	var out [32]byte
	b.ReportAllocs()
	for b.Loop() {
		x25519Base(&out, &k)
	}
}

func BenchmarkX25519BaseLadder(b *testing.B) {
	k := basePoint
	k[5] = 0x5a
	var out [32]byte
	b.ReportAllocs()
	for b.Loop() {
		x25519(&out, &k, &basePoint)
	}
}

func BenchmarkX25519BaseECDH(b *testing.B) {
	k := basePoint
	k[5] = 0x5a
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ecdh.X25519().NewPrivateKey(k[:]); err != nil {
			b.Fatal(err)
		}
	}
}
