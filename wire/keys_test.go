package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// RFC 7748 §6.1: Alice's X25519 key pair.
const (
	rfc7748AlicePrivHex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	rfc7748AlicePubHex  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	// The same keys in unpadded base64url, computed with Python's
	// base64.urlsafe_b64encode and the padding stripped.
	rfc7748AlicePrivText = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo"
	rfc7748AlicePubText  = "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"
)

func mustHex32(t testing.TB, s string) [32]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad test hex %q", s)
	}
	return [32]byte(b)
}

func TestKeyKnownAnswer(t *testing.T) {
	priv := PrivateKey(mustHex32(t, rfc7748AlicePrivHex))
	pub := PublicKey(mustHex32(t, rfc7748AlicePubHex))
	if got := priv.PublicKey(); got != pub {
		t.Fatalf("PublicKey() = %x, want %x", got, pub)
	}
	if got := pub.String(); got != rfc7748AlicePubText {
		t.Errorf("pub.String() = %q, want %q", got, rfc7748AlicePubText)
	}
	if got := priv.Text(); got != rfc7748AlicePrivText {
		t.Errorf("priv.Text() = %q, want %q", got, rfc7748AlicePrivText)
	}
	if p, err := ParsePublicKey(rfc7748AlicePubText); err != nil || p != pub {
		t.Errorf("ParsePublicKey = %x, %v", p, err)
	}
	if p, err := ParsePrivateKey(rfc7748AlicePrivText); err != nil || p != priv {
		t.Errorf("ParsePrivateKey failed: %v", err)
	}
}

func TestKeyGenerateRoundTrip(t *testing.T) {
	seen := make(map[PublicKey]bool)
	for range 200 {
		priv, err := GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		if priv.IsZero() {
			t.Fatal("generated zero key")
		}
		pub := priv.PublicKey()
		if pub.IsZero() || seen[pub] {
			t.Fatalf("bad or repeated public key %v", pub)
		}
		seen[pub] = true

		s := pub.String()
		if len(s) != KeyTextLen || strings.ContainsAny(s, "+/=@") {
			t.Fatalf("public key text %q", s)
		}
		if got, err := ParsePublicKey(s); err != nil || got != pub {
			t.Fatalf("ParsePublicKey(%q) = %v, %v", s, got, err)
		}
		if got, err := ParsePrivateKey(priv.Text()); err != nil || got != priv {
			t.Fatalf("ParsePrivateKey round trip: %v", err)
		}

		// Text marshalling.
		b, err := pub.MarshalText()
		if err != nil || string(b) != s {
			t.Fatalf("MarshalText = %q, %v", b, err)
		}
		var pub2 PublicKey
		if err := pub2.UnmarshalText(b); err != nil || pub2 != pub {
			t.Fatalf("UnmarshalText: %v", err)
		}
		b, err = priv.MarshalText()
		if err != nil || string(b) != priv.Text() {
			t.Fatalf("private MarshalText = %v", err)
		}
		var priv2 PrivateKey
		if err := priv2.UnmarshalText(b); err != nil || priv2 != priv {
			t.Fatalf("private UnmarshalText: %v", err)
		}
		if b, _ := pub.AppendText([]byte("x")); string(b) != "x"+s {
			t.Fatalf("AppendText = %q", b)
		}
	}
}

// TestKeyEveryLastCharacter checks canonical and non-canonical last
// characters: 43 characters carry 258 bits, so the last character's two low
// bits are unused and must be zero.
func TestKeyEveryLastCharacter(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	prefix := rfc7748AlicePubText[:KeyTextLen-1]
	for i := range len(alphabet) {
		s := prefix + alphabet[i:i+1]
		_, err := ParsePublicKey(s)
		if canonical := i%4 == 0; canonical != (err == nil) {
			t.Errorf("ParsePublicKey(%q) err = %v, want canonical=%v", s, err, canonical)
		}
		if err != nil && !strings.Contains(err.Error(), "non-canonical") {
			t.Errorf("ParsePublicKey(%q) err = %v, want non-canonical", s, err)
		}
	}
}

func TestParseKeyErrors(t *testing.T) {
	valid := rfc7748AlicePubText
	// Flip only unused low bits of the last character: 'o' (40) -> 'p' (41).
	nonCanonical := valid[:42] + "p"
	zero := strings.Repeat("A", KeyTextLen)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "empty, want 43 base64url characters"},
		{"only whitespace", " \n", "empty"},
		{"short", "abc", `"abc": 3 characters, want 43 base64url characters`},
		{"long", valid + "A", "44 characters, want 43"},
		{"one short", valid[:42], "42 characters, want 43"},
		{"padded", valid + "=", "padding '=' at offset 43"},
		{"std base64 plus", "+" + valid[1:], "standard base64 character '+' at offset 0"},
		{"std base64 slash", valid[:5] + "/" + valid[6:], "standard base64 character '/' at offset 5"},
		{"bad char", valid[:10] + "!" + valid[11:], "invalid character '!' at offset 10"},
		{"inner space", valid[:10] + " " + valid[11:], "invalid character ' ' at offset 10"},
		{"inner newline", valid[:10] + "\n" + valid[10:], `invalid character '\n' at offset 10`},
		{"non-ascii", "é" + valid[2:], `invalid character '\xc3' at offset 0`},
		{"unicode space trimmed? no", valid + "\u00a0", "invalid character '\\xc2' at offset 43"},
		{"non-canonical", nonCanonical, "non-canonical encoding: last character 'p' has unused low bits set"},
		{"zero key", zero, "all-zero key"},
		{"zero key newline", zero + "\n", "all-zero key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePublicKey(tt.in)
			if err == nil {
				t.Fatalf("ParsePublicKey(%q) succeeded", tt.in)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePublicKey(%q) error %q, want it to contain %q", tt.in, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "wire: invalid public key ") {
				t.Errorf("error %q lacks prefix", err)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Kind != "public key" || ke.Input != tt.in {
				t.Errorf("error %#v is not a public *KeyError with the input", err)
			}
			var k PublicKey
			if err := k.UnmarshalText([]byte(tt.in)); err == nil || !k.IsZero() {
				t.Errorf("UnmarshalText(%q) = %v, key %v", tt.in, err, k)
			}

			// The private key parser rejects the same inputs but never
			// repeats them.
			_, err = ParsePrivateKey(tt.in)
			if err == nil {
				t.Fatalf("ParsePrivateKey(%q) succeeded", tt.in)
			}
			if !errors.As(err, &ke) || ke.Kind != "private key" || ke.Input != "" {
				t.Errorf("error %#v is not a private *KeyError without input", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "wire: invalid private key: ") {
				t.Errorf("private error %q lacks prefix", msg)
			}
			if len(tt.in) >= 3 && strings.Contains(msg, strings.TrimSpace(tt.in)) {
				t.Errorf("private error %q repeats the input", msg)
			}
			for _, leak := range []string{"'!'", "'p'", `'\xc3'`} {
				if strings.Contains(msg, leak) {
					t.Errorf("private error %q quotes a character of the input", msg)
				}
			}
		})
	}
}

func TestParseKeyWhitespace(t *testing.T) {
	pub := PublicKey(mustHex32(t, rfc7748AlicePubHex))
	priv := PrivateKey(mustHex32(t, rfc7748AlicePrivHex))
	for _, ws := range []struct{ pre, post string }{
		{"", "\n"}, {"", "\r\n"}, {" ", " "}, {"\t", "\n\n"}, {"\v\f", ""},
	} {
		if got, err := ParsePublicKey(ws.pre + rfc7748AlicePubText + ws.post); err != nil || got != pub {
			t.Errorf("ParsePublicKey with %q/%q: %v", ws.pre, ws.post, err)
		}
		if got, err := ParsePrivateKey(ws.pre + rfc7748AlicePrivText + ws.post); err != nil || got != priv {
			t.Errorf("ParsePrivateKey with %q/%q: %v", ws.pre, ws.post, err)
		}
	}
}

func TestPrivateKeyRedaction(t *testing.T) {
	priv := PrivateKey(mustHex32(t, rfc7748AlicePrivHex))
	secretText := priv.Text()
	secretHex := hex.EncodeToString(priv[:])
	// Decimal of the first bytes, as %d on a byte array would print.
	secretDec := fmt.Sprint(priv[0], " ", priv[1], " ", priv[2])

	if got := priv.String(); got != "(private key)" {
		t.Errorf("String() = %q", got)
	}
	type wrapper struct {
		Name string
		Key  PrivateKey
		Ptr  *PrivateKey
	}
	w := wrapper{"x", priv, &priv}
	outputs := []string{
		fmt.Sprintf("%v", priv),
		fmt.Sprintf("%s", priv),
		fmt.Sprintf("%x", priv),
		fmt.Sprintf("%X", priv),
		fmt.Sprintf("%d", priv),
		fmt.Sprintf("%q", priv),
		fmt.Sprintf("%#v", priv),
		fmt.Sprintf("%+v", priv),
		fmt.Sprintf("%v", &priv),
		fmt.Sprintf("%v", w),
		fmt.Sprintf("%+v", w),
		fmt.Sprintf("%#v", w),
		fmt.Sprint(priv),
		fmt.Sprintln(priv),
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "key", priv, "ptr", &priv)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "key", priv)
	outputs = append(outputs, buf.String())
	for _, out := range outputs {
		lower := strings.ToLower(out)
		if strings.Contains(out, secretText) || strings.Contains(lower, secretHex[:16]) || strings.Contains(out, secretDec) {
			t.Errorf("output leaks the private key: %q", out)
		}
		if !strings.Contains(out, "(private key)") {
			t.Errorf("output %q lacks the placeholder", out)
		}
	}

	// The explicit forms do give the key, for key files and configuration.
	if b, _ := priv.MarshalText(); string(b) != secretText {
		t.Errorf("MarshalText = %q", b)
	}
	j, err := json.Marshal(struct{ K PrivateKey }{priv})
	if err != nil || !strings.Contains(string(j), secretText) {
		t.Errorf("json = %s, %v", j, err)
	}
}

func TestKeyZero(t *testing.T) {
	var pub PublicKey
	var priv PrivateKey
	if !pub.IsZero() || !priv.IsZero() {
		t.Fatal("zero keys not IsZero")
	}
	pub[31] = 1
	priv[0] = 1
	if pub.IsZero() || priv.IsZero() {
		t.Fatal("non-zero keys IsZero")
	}
}

func TestParsePublicKeyAllocs(t *testing.T) {
	s := rfc7748AlicePubText + "\n"
	n := testing.AllocsPerRun(100, func() {
		if _, err := ParsePublicKey(s); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("ParsePublicKey allocates %v times", n)
	}
}

// FuzzParsePublicKey checks that the parser never panics and that every
// accepted key prints in one canonical form that parses back to it.
func FuzzParsePublicKey(f *testing.F) {
	f.Add(rfc7748AlicePubText)
	f.Add(rfc7748AlicePubText + "\n")
	f.Add(strings.Repeat("A", 43))
	f.Add("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error %v is not a *KeyError", err)
			}
			if !k.IsZero() {
				t.Fatalf("failed parse returned a key")
			}
			if _, perr := ParsePrivateKey(s); perr == nil {
				t.Fatalf("private parser accepted %q, public rejected: %v", s, err)
			}
			return
		}
		if k.IsZero() {
			t.Fatal("accepted the zero key")
		}
		text := k.String()
		if text != strings.Trim(s, " \t\n\v\f\r") {
			t.Fatalf("%q parsed but prints as %q", s, text)
		}
		k2, err := ParsePublicKey(text)
		if err != nil || k2 != k {
			t.Fatalf("re-parse of %q: %v, %v", text, k2, err)
		}
		if p, err := ParsePrivateKey(s); err != nil || [32]byte(p) != [32]byte(k) {
			t.Fatalf("private parser disagrees on %q: %v", s, err)
		}
	})
}

func TestParsePublicKeyCanonical(t *testing.T) {
	enc := func(k [KeyLen]byte) string { return keyEncoding.EncodeToString(k[:]) }
	var p [KeyLen]byte // p = 2^255-19, little-endian
	p[0] = 0xed
	for i := 1; i < 31; i++ {
		p[i] = 0xff
	}
	p[31] = 0x7f
	below := p
	below[0] = 0xec
	high := [KeyLen]byte{9}
	high[31] = 0x80
	for _, tt := range []struct {
		k  [KeyLen]byte
		ok bool
	}{{p, false}, {below, true}, {high, false}, {[KeyLen]byte{9}, true}} {
		_, err := ParsePublicKey(enc(tt.k))
		if (err == nil) != tt.ok {
			t.Errorf("key % x: err %v, want ok=%v", tt.k, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "canonical X25519") {
			t.Errorf("error %q does not say why", err)
		}
	}
}

// TestGeneratePrivateKeyAllocs: a key is 32 random bytes, made without
// the key objects of crypto/ecdh (a Dialer without a key makes one).
func TestGeneratePrivateKeyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes crypto/rand.Read allocate; the non-race pass runs this")
	}
	n := testing.AllocsPerRun(100, func() {
		if _, err := GeneratePrivateKey(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("GeneratePrivateKey: %v allocations, want 0", n)
	}
}
