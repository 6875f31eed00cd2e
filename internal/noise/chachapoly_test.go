package noise

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// TestChaChaPolyRFC8439 is the AEAD example of RFC 8439 §2.8.2.
func TestChaChaPolyRFC8439(t *testing.T) {
	var key [KeyLen]byte
	for i := range key {
		key[i] = 0x80 + byte(i)
	}
	nonce := [12]byte{0x07, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47}
	ad, _ := hex.DecodeString("50515253c0c1c2c3c4c5c6c7")
	plaintext := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	want, _ := hex.DecodeString("" +
		"d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6" +
		"3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36" +
		"92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
		"3ff4def08e4b7a9de576d26586cec64b6116" +
		"1ae10b594f09e26a7e902ecbd0600691") // the tag
	sealed := chachaPolySeal(nil, &key, &nonce, ad, plaintext)
	if !bytes.Equal(sealed, want) {
		t.Fatalf("sealed:\n got %x\nwant %x", sealed, want)
	}
	opened, ok := chachaPolyOpen(nil, &key, &nonce, ad, sealed)
	if !ok || !bytes.Equal(opened, plaintext) {
		t.Fatalf("open: %v, %q", ok, opened)
	}
}

// TestChaChaPolyCrossCheck compares seal and open with
// golang.org/x/crypto/chacha20poly1305 on random keys, nonces, additional
// data and plaintexts (empty ones included), in place and not, and checks
// that every damaged ciphertext, tag or additional data is refused without
// output.
func TestChaChaPolyCrossCheck(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(7, 8))
	var key [KeyLen]byte
	var nonce [12]byte
	for i := 0; i < 1000; i++ {
		rand.Read(key[:])
		rand.Read(nonce[:])
		if i%3 == 0 {
			nonce = chachaNonce(rng.Uint64()) // Noise's form
		}
		ad := make([]byte, rng.IntN(3)*rng.IntN(70))
		pt := make([]byte, rng.IntN(4)*rng.IntN(150)) // a quarter or more are empty
		rand.Read(ad)
		rand.Read(pt)
		ref, err := chacha20poly1305.New(key[:])
		if err != nil {
			t.Fatal(err)
		}
		want := ref.Seal(nil, nonce[:], pt, ad)

		prefix := []byte("prefix")
		got := chachaPolySeal(bytes.Clone(prefix), &key, &nonce, ad, pt)
		if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want) {
			t.Fatalf("case %d: seal differs from chacha20poly1305:\n got %x\nwant %x", i, got[len(prefix):], want)
		}
		// In place: dst is plaintext[:0] with room for the tag.
		buf := make([]byte, len(pt), len(pt)+TagLen)
		copy(buf, pt)
		if got := chachaPolySeal(buf[:0], &key, &nonce, ad, buf); !bytes.Equal(got, want) {
			t.Fatalf("case %d: in-place seal differs", i)
		}

		opened, ok := chachaPolyOpen(nil, &key, &nonce, ad, want)
		if !ok || !bytes.Equal(opened, pt) {
			t.Fatalf("case %d: open of a genuine ciphertext: %v", i, ok)
		}
		ct := bytes.Clone(want)
		if opened, ok := chachaPolyOpen(ct[:0], &key, &nonce, ad, ct); !ok || !bytes.Equal(opened, pt) {
			t.Fatalf("case %d: in-place open: %v", i, ok)
		}

		// Damage one bit of the ciphertext or tag, or of the additional
		// data, or cut the message short.
		bad := bytes.Clone(want)
		badAD := ad
		switch i % 3 {
		case 0:
			bad[rng.IntN(len(bad))] ^= 1 << rng.IntN(8)
		case 1:
			if len(ad) == 0 {
				badAD = []byte{0}
			} else {
				badAD = bytes.Clone(ad)
				badAD[rng.IntN(len(ad))] ^= 1 << rng.IntN(8)
			}
		case 2:
			bad = bad[:rng.IntN(len(bad))]
		}
		out := []byte("untouched")
		if got, ok := chachaPolyOpen(out[:0], &key, &nonce, badAD, bad); ok || got != nil || string(out) != "untouched" {
			t.Fatalf("case %d: damaged message accepted or output written: %v %q", i, ok, out)
		}
		if _, err := ref.Open(nil, nonce[:], bad, badAD); err == nil {
			t.Fatalf("case %d: the reference accepts the damaged message", i)
		}
	}
}

// TestChaChaPolyAllocs: seal and open into buffers with room allocate
// nothing.
func TestChaChaPolyAllocs(t *testing.T) {
	var key [KeyLen]byte
	nonce := chachaNonce(3)
	pt := make([]byte, 56)
	ct := make([]byte, 0, len(pt)+TagLen)
	out := make([]byte, 0, len(pt))
	ad := make([]byte, 32)
	allocs := testing.AllocsPerRun(100, func() {
		ct = chachaPolySeal(ct[:0], &key, &nonce, ad, pt)
		var ok bool
		if out, ok = chachaPolyOpen(out[:0], &key, &nonce, ad, ct); !ok {
			t.Fatal("open failed")
		}
	})
	if allocs != 0 {
		t.Fatalf("seal+open: %v allocations, want 0", allocs)
	}
}

// TestBLAKE2sInline checks the stack-buffer hash and HMAC at and around
// their length limits against the streaming code (which TestHMAC checks
// against crypto/hmac), and that the limits are reported.
func TestBLAKE2sInline(t *testing.T) {
	ss := NewSymmetricState(DefaultSuite, []byte("x"))
	data := make([]byte, blake2sInline+1)
	rand.Read(data)
	key := make([]byte, 32)
	rand.Read(key)
	for n := 0; n <= len(data); n++ {
		a, b := data[:n/3], data[n/3:n]
		var got, want [maxHashLen]byte
		ok := blake2sHash(&got, a, b)
		if ok != (n <= blake2sInline) {
			t.Fatalf("blake2sHash of %d bytes: ok = %v", n, ok)
		}
		h := ss.hasher()
		h.Write(a)
		h.Write(b)
		h.Sum(want[:0])
		if ok && got != want {
			t.Fatalf("blake2sHash of %d bytes differs", n)
		}
		if n > hmacInline+1 {
			continue
		}
		ok = hmacBLAKE2s(&got, key, a, b)
		if ok != (n <= hmacInline) {
			t.Fatalf("hmacBLAKE2s of %d bytes: ok = %v", n, ok)
		}
		ss.hmacStream(&want, key, a, b)
		if ok && got != want {
			t.Fatalf("hmacBLAKE2s of %d bytes differs", n)
		}
	}
}
