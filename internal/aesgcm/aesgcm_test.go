package aesgcm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

func stdGCM(t testing.TB, key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func needKernels(t testing.TB) {
	if !Supported {
		t.Skip("this CPU lacks AVX-512 VAES/VPCLMULQDQ; New returns crypto/cipher's AES-GCM")
	}
}

func TestKeySchedule(t *testing.T) {
	needKernels(t)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100; i++ {
		key := make([]byte, 32)
		for j := range key {
			key[j] = byte(r.Uint32())
		}
		g := new(gcm)
		expandKey256(&g.rk, key)
		var block, got, want [16]byte
		for j := range block {
			block[j] = byte(r.Uint32())
		}
		if i%4 == 0 { // the counter of the J0 that encryptBlock makes wraps
			block[12], block[13], block[14], block[15] = 0, 0, 0, 0
		}
		g.encryptBlock(&got, &block)
		b, _ := aes.NewCipher(key)
		b.Encrypt(want[:], block[:])
		if got != want {
			t.Fatalf("key %x block %x: E = %x, crypto/aes %x", key, block, got, want)
		}
	}
}

// TestDifferential compares Seal and Open with crypto/cipher's AES-GCM
// over every plaintext length to 1,100 bytes and beyond, several lengths
// of associated data, and offsets that misalign every buffer.
func TestDifferential(t *testing.T) {
	needKernels(t)
	r := rand.New(rand.NewPCG(3, 4))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
	key := make([]byte, 32)
	fill(key)
	ours, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	ref := stdGCM(t, key)
	lengths := []int{}
	for n := 0; n <= 1100; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 1416, 1452, 4095, 4096, 4097, 65536, 65537)
	for _, n := range lengths {
		adLen := []int{0, 1, 15, 16, 17, 40, 255, 256, 257, 300}[n%10]
		off := n % 7
		buf := make([]byte, off+n+adLen+TagSize)
		fill(buf)
		pt := buf[off : off+n]
		ad := buf[off+n : off+n+adLen]
		nonce := make([]byte, NonceSize)
		fill(nonce)
		if n%5 == 0 { // the 32-bit counter wraps inside the message
			nonce[8], nonce[9], nonce[10], nonce[11] = 0xff, 0xff, 0xff, 0xfe
		}
		want := ref.Seal(nil, nonce, pt, ad)
		got := ours.Seal(nil, nonce, pt, ad)
		if !bytes.Equal(got, want) {
			t.Fatalf("n=%d ad=%d: Seal differs\n got %x\nwant %x", n, adLen, got, want)
		}
		// In place, appended to a misaligned prefix.
		inplace := make([]byte, 3+n, 3+n+TagSize)
		copy(inplace[3:], pt)
		sealed := ours.Seal(inplace[3:3], nonce, inplace[3:], ad)
		if !bytes.Equal(sealed, want) {
			t.Fatalf("n=%d: in-place Seal differs", n)
		}
		opened, err := ours.Open(sealed[:0], nonce, sealed, ad)
		if err != nil || !bytes.Equal(opened, pt) {
			t.Fatalf("n=%d: in-place Open = %v, %v", n, err, opened)
		}
		// A flipped bit anywhere fails Open, which leaves zeros in dst.
		bad := append([]byte(nil), want...)
		bit := r.IntN(len(bad) * 8)
		bad[bit/8] ^= 1 << (bit % 8)
		dst := bytes.Repeat([]byte{0xaa}, n)
		if _, err := ours.Open(dst[:0], nonce, bad, ad); err == nil {
			t.Fatalf("n=%d: Open accepted a flipped bit %d", n, bit)
		}
		if !bytes.Equal(dst, make([]byte, n)) {
			t.Fatalf("n=%d: a failed Open left plaintext in its output", n)
		}
		if adLen > 0 {
			ad2 := append([]byte(nil), ad...)
			ad2[r.IntN(adLen)] ^= 0x80
			if _, err := ours.Open(nil, nonce, want, ad2); err == nil {
				t.Fatalf("n=%d: Open accepted changed associated data", n)
			}
		}
	}
}

// TestKnownAnswer is Test Case 16 of McGrew and Viega's GCM specification
// (AES-256, 60 bytes of plaintext, 20 of associated data).
func TestKnownAnswer(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key := h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
	nonce := h("cafebabefacedbaddecaf888")
	pt := h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
	ad := h("feedfacedeadbeeffeedfacedeadbeefabaddad2")
	want := h("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662" +
		"76fc6ece0f4e1768cddf8853bb2d551b")
	g, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Seal(nil, nonce, pt, ad); !bytes.Equal(got, want) {
		t.Fatalf("Seal = %x, want %x", got, want)
	}
}

func TestSealOpenAllocs(t *testing.T) {
	needKernels(t)
	g, _ := New(make([]byte, 32))
	buf := make([]byte, 1416+TagSize)
	ad := make([]byte, 40)
	nonce := make([]byte, NonceSize)
	if n := testing.AllocsPerRun(100, func() {
		s := g.Seal(buf[:0], nonce, buf[:1416], ad)
		if _, err := g.Open(s[:0], nonce, s, ad); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Seal+Open: %v allocations, want 0", n)
	}
}

// TestFallback checks that New hands out crypto/cipher's AES-GCM where the
// kernels cannot run, with the same answers.
func TestFallback(t *testing.T) {
	saved := Supported
	t.Cleanup(func() { Supported = saved })
	Supported = false
	key := bytes.Repeat([]byte{7}, KeySize)
	g, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, ours := g.(*gcm); ours {
		t.Fatal("New returned the kernels' AEAD on a CPU marked unsupported")
	}
	nonce := make([]byte, NonceSize)
	if got, want := g.Seal(nil, nonce, []byte("haven"), nil), stdGCM(t, key).Seal(nil, nonce, []byte("haven"), nil); !bytes.Equal(got, want) {
		t.Fatalf("fallback Seal = %x, want %x", got, want)
	}
	if _, err := New(key[:16]); err == nil {
		t.Fatal("New accepted a 16-byte key")
	}
}

// FuzzDifferential seals and opens random messages with both
// implementations.
func FuzzDifferential(f *testing.F) {
	f.Add([]byte("key"), []byte("nonce"), []byte("plaintext"), []byte("ad"))
	f.Add([]byte{}, []byte{}, make([]byte, 1416), make([]byte, 40))
	f.Add([]byte{1}, []byte{0xff, 0xff, 0xff, 0xff}, make([]byte, 300), make([]byte, 257))
	f.Fuzz(func(t *testing.T, keySeed, nonceSeed, pt, ad []byte) {
		if !Supported {
			t.Skip("no kernels on this CPU")
		}
		key := make([]byte, KeySize)
		copy(key, keySeed)
		nonce := make([]byte, NonceSize)
		copy(nonce[NonceSize-min(len(nonceSeed), NonceSize):], nonceSeed)
		ours, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		want := stdGCM(t, key).Seal(nil, nonce, pt, ad)
		got := ours.Seal(nil, nonce, pt, ad)
		if !bytes.Equal(got, want) {
			t.Fatalf("Seal differs: got %x want %x", got, want)
		}
		opened, err := ours.Open(nil, nonce, got, ad)
		if err != nil || !bytes.Equal(opened, pt) {
			t.Fatalf("Open = %x, %v", opened, err)
		}
	})
}

// benchAEADs runs op under both implementations on a 1,416-byte packet
// under 40 bytes of associated data.
func benchAEADs(b *testing.B, op func(b *testing.B, g cipher.AEAD, buf, nonce, ad []byte)) {
	for _, impl := range []string{"haven", "stdlib"} {
		b.Run(impl, func(b *testing.B) {
			key := make([]byte, 32)
			var g cipher.AEAD
			if impl == "stdlib" {
				g = stdGCM(b, key)
			} else {
				g, _ = New(key)
			}
			b.SetBytes(1416)
			b.ReportAllocs()
			op(b, g, make([]byte, 1416+TagSize), make([]byte, NonceSize), make([]byte, 40))
		})
	}
}

func BenchmarkSeal1416(b *testing.B) {
	benchAEADs(b, func(b *testing.B, g cipher.AEAD, buf, nonce, ad []byte) {
		for b.Loop() {
			g.Seal(buf[:0], nonce, buf[:1416], ad)
		}
	})
}

func BenchmarkOpen1416(b *testing.B) {
	benchAEADs(b, func(b *testing.B, g cipher.AEAD, buf, nonce, ad []byte) {
		sealed := g.Seal(nil, nonce, buf[:1416], ad)
		for b.Loop() {
			if _, err := g.Open(buf[:0], nonce, sealed, ad); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkNew(b *testing.B) {
	key := make([]byte, KeySize)
	b.Run("haven", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := New(key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			stdGCM(b, key)
		}
	})
}

// TestTagEveryBit flips each of the tag's 128 bits in turn: Open must
// refuse every one (the tag comparison folds 16 bytes into one word, and
// a fold that dropped a lane would accept some).
func TestTagEveryBit(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	nonce := make([]byte, NonceSize)
	ours, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	pt := bytes.Repeat([]byte("haven"), 300)
	sealed := ours.Seal(nil, nonce, pt, []byte("ad"))
	if _, err := ours.Open(nil, nonce, sealed, []byte("ad")); err != nil {
		t.Fatalf("Open of the sealed message: %v", err)
	}
	for bit := 0; bit < TagSize*8; bit++ {
		bad := append([]byte(nil), sealed...)
		bad[len(pt)+bit/8] ^= 1 << (bit % 8)
		if _, err := ours.Open(nil, nonce, bad, []byte("ad")); err == nil {
			t.Fatalf("Open accepted tag bit %d flipped", bit)
		}
	}
	var want [TagSize]byte
	copy(want[:], sealed[len(pt):])
	if !tagEqual(&want, sealed[len(pt):]) {
		t.Fatal("tagEqual refused equal tags")
	}
}
