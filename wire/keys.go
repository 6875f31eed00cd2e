package wire

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Key sizes.
const (
	// KeyLen is the size of an X25519 public or private key.
	KeyLen = 32
	// KeyTextLen is the length of a key's text form: 32 bytes in unpadded
	// base64url.
	KeyTextLen = 43
)

// keyEncoding is the text form of every key: base64url without padding
// (RFC 4648 §5), decoded strictly so that the two unused low bits of the
// last character must be zero and each key has exactly one spelling.
//
// Base64url is chosen over standard base64 because it has no '/', '+' or
// '=': a key can sit unquoted in a "<key>@host:port" address, a URL, a file
// name or a shell command line.
var keyEncoding = base64.RawURLEncoding.Strict()

// keyTrimSet is the ASCII whitespace that ParsePublicKey and ParsePrivateKey
// remove from both ends of their input (a key file normally ends in a
// newline). Unicode spaces are not trimmed: they are an error.
const keyTrimSet = " \t\n\v\f\r"

// PublicKey is an X25519 public key: a peer's static identity.
//
// Its text form (String, MarshalText) is 43 characters of unpadded base64url.
type PublicKey [KeyLen]byte

// PrivateKey is an X25519 private key, stored as given: X25519 clamps the
// scalar when it is used.
//
// To keep a key out of logs by accident, String, GoString, Format and
// LogValue never show it: fmt and log/slog print "(private key)" for every
// verb. The real text form comes only from Text, AppendText and MarshalText,
// which are for writing key files and configuration, so encoding/json and
// similar encoders that use MarshalText do emit the secret.
type PrivateKey [KeyLen]byte

// privateKeyPlaceholder is what a PrivateKey prints as.
const privateKeyPlaceholder = "(private key)"

// KeyError reports a key text that ParsePublicKey, ParsePrivateKey or an
// UnmarshalText method rejected.
type KeyError struct {
	// Kind is "public key" or "private key".
	Kind string
	// Input is the rejected text of a public key. It is always empty for a
	// private key, whose text is never repeated.
	Input string
	// Reason says what is wrong, e.g. "3 characters, want 43 base64url
	// characters".
	Reason string
}

func (e *KeyError) Error() string {
	if e.Kind == kindPrivate {
		return "wire: invalid " + e.Kind + ": " + e.Reason
	}
	return "wire: invalid " + e.Kind + " " + strconv.Quote(e.Input) + ": " + e.Reason
}

const (
	kindPublic  = "public key"
	kindPrivate = "private key"
)

// GeneratePrivateKey returns a new random X25519 private key from
// crypto/rand: 32 random bytes, as crypto/ecdh makes one (the scalar is
// clamped where it is used, RFC 7748 §5), without its key objects.
func GeneratePrivateKey() (PrivateKey, error) {
	var k PrivateKey
	if _, err := rand.Read(k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("wire: generating private key: %w", err)
	}
	if k.IsZero() {
		// Probability 2^-256; a zero result means the generator is broken.
		return PrivateKey{}, errors.New("wire: generating private key: random source returned zeros")
	}
	return k, nil
}

// PublicKey returns the X25519 public key of k.
func (k PrivateKey) PublicKey() PublicKey {
	var pub PublicKey
	sk, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		// NewPrivateKey fails only on a wrong length, which the array type
		// rules out.
		panic("wire: X25519 rejected a 32-byte private key: " + err.Error())
	}
	copy(pub[:], sk.PublicKey().Bytes())
	return pub
}

// IsZero reports whether k is the all-zero key, which is never valid: it
// stands for "no key".
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// IsZero reports whether k is the all-zero key, which is never valid: it
// stands for "no key".
func (k PrivateKey) IsZero() bool { return k == PrivateKey{} }

// String returns the key's 43-character base64url text form.
func (k PublicKey) String() string {
	var buf [KeyTextLen]byte
	keyEncoding.Encode(buf[:], k[:])
	return string(buf[:])
}

// AppendText appends the key's text form to b (encoding.TextAppender).
func (k PublicKey) AppendText(b []byte) ([]byte, error) {
	return keyEncoding.AppendEncode(b, k[:]), nil
}

// MarshalText returns the key's text form (encoding.TextMarshaler).
func (k PublicKey) MarshalText() ([]byte, error) {
	return k.AppendText(make([]byte, 0, KeyTextLen))
}

// UnmarshalText parses a key's text form as ParsePublicKey does
// (encoding.TextUnmarshaler).
func (k *PublicKey) UnmarshalText(text []byte) error {
	pub, err := ParsePublicKey(string(text))
	if err != nil {
		return err
	}
	*k = pub
	return nil
}

// ParsePublicKey parses a public key's text form: exactly 43 characters of
// unpadded base64url in its one canonical spelling, after trimming ASCII
// whitespace from both ends. The all-zero key is rejected. Errors are
// *KeyError.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	if reason := decodeKey((*[KeyLen]byte)(&k), strings.Trim(s, keyTrimSet), false); reason != "" {
		return PublicKey{}, &KeyError{Kind: kindPublic, Input: s, Reason: reason}
	}
	return k, nil
}

// parsePublicKeyExact is ParsePublicKey without the whitespace trimming, for
// parsers of larger texts (addresses) where whitespace is an error. It
// returns the reason for rejecting s, or "".
func parsePublicKeyExact(s string, k *PublicKey) string {
	return decodeKey((*[KeyLen]byte)(k), s, false)
}

// String returns "(private key)", never the key: see PrivateKey.
func (k PrivateKey) String() string { return privateKeyPlaceholder }

// GoString returns a placeholder, never the key, so %#v does not print the
// key's bytes.
func (k PrivateKey) GoString() string { return "wire.PrivateKey" + privateKeyPlaceholder }

// Format prints "(private key)" for every fmt verb, so that %x, %d and the
// like do not print the key's bytes either.
func (k PrivateKey) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(k.GoString()))
		return
	}
	_, _ = f.Write([]byte(privateKeyPlaceholder))
}

// LogValue makes log/slog print "(private key)" instead of calling
// MarshalText (slog.LogValuer).
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue(privateKeyPlaceholder) }

// Text returns the key's real 43-character base64url text form, for key
// files. Handle the result as a secret.
func (k PrivateKey) Text() string {
	var buf [KeyTextLen]byte
	keyEncoding.Encode(buf[:], k[:])
	return string(buf[:])
}

// AppendText appends the key's real text form to b (encoding.TextAppender).
func (k PrivateKey) AppendText(b []byte) ([]byte, error) {
	return keyEncoding.AppendEncode(b, k[:]), nil
}

// MarshalText returns the key's real text form (encoding.TextMarshaler).
func (k PrivateKey) MarshalText() ([]byte, error) {
	return k.AppendText(make([]byte, 0, KeyTextLen))
}

// UnmarshalText parses a key's text form as ParsePrivateKey does
// (encoding.TextUnmarshaler).
func (k *PrivateKey) UnmarshalText(text []byte) error {
	priv, err := ParsePrivateKey(string(text))
	if err != nil {
		return err
	}
	*k = priv
	return nil
}

// ParsePrivateKey parses a private key's text form with the same rules as
// ParsePublicKey. Errors are *KeyError and never contain the input text.
func ParsePrivateKey(s string) (PrivateKey, error) {
	var k PrivateKey
	if reason := decodeKey((*[KeyLen]byte)(&k), strings.Trim(s, keyTrimSet), true); reason != "" {
		return PrivateKey{}, &KeyError{Kind: kindPrivate, Reason: reason}
	}
	return k, nil
}

// decodeKey decodes the text form s into dst and returns "" or the reason s
// is not a valid key. When secret is set the reason quotes no part of s.
func decodeKey(dst *[KeyLen]byte, s string, secret bool) string {
	if s == "" {
		return "empty, want 43 base64url characters"
	}
	// Check the characters first: the decoder would skip '\r' and '\n', and
	// a specific character beats a length in an error message (a standard
	// base64 key from another tool is 44 characters with '+', '/' or '=').
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isBase64URL(c) {
			continue
		}
		at := " at offset " + strconv.Itoa(i)
		switch {
		case c == '=':
			return "padding '='" + at + ": keys are unpadded base64url"
		case c == '+' || c == '/':
			return "standard base64 character " + strconv.QuoteRune(rune(c)) + at +
				": keys are base64url, which uses '-' and '_'"
		case secret:
			return "invalid character" + at + ", want base64url (A-Z a-z 0-9 - _)"
		default:
			return "invalid character " + quoteByte(c) + at + ", want base64url (A-Z a-z 0-9 - _)"
		}
	}
	if len(s) != KeyTextLen {
		unit := " characters"
		if len(s) == 1 {
			unit = " character"
		}
		return strconv.Itoa(len(s)) + unit + ", want 43 base64url characters"
	}
	var buf [KeyTextLen]byte // a stack copy, so decoding does not allocate
	copy(buf[:], s)
	if n, err := keyEncoding.Decode(dst[:], buf[:]); err != nil || n != KeyLen {
		// With 43 alphabet characters the only failure left is a last
		// character whose two unused low bits are not zero.
		*dst = [KeyLen]byte{}
		if secret {
			return "non-canonical encoding: the last character's unused low bits are not zero"
		}
		return "non-canonical encoding: last character " + quoteByte(s[len(s)-1]) +
			" has unused low bits set"
	}
	if *dst == [KeyLen]byte{} {
		return "all-zero key"
	}
	if !secret && !canonicalX25519(dst) {
		*dst = [KeyLen]byte{}
		return "not a canonical X25519 public key (u-coordinate not below 2^255-19)"
	}
	return ""
}

// canonicalX25519 reports whether the little-endian u-coordinate k is below
// p = 2^255-19. RFC 7748 §5 lets receivers mask the top bit, so without this
// check one point would have two spellings, and two authentication tags.
func canonicalX25519(k *[KeyLen]byte) bool {
	if k[31] != 0x7f {
		return k[31] < 0x7f
	}
	for i := 30; i >= 1; i-- {
		if k[i] != 0xff {
			return true
		}
	}
	return k[0] < 0xed
}

// isBase64URL reports whether c is in the base64url alphabet.
func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// quoteByte quotes one byte of input for an error message: 'x' for
// printable ASCII, '\xNN' otherwise.
func quoteByte(c byte) string {
	if c < 0x80 {
		return strconv.QuoteRuneToASCII(rune(c))
	}
	return `'\x` + strconv.FormatUint(uint64(c)>>4, 16) + strconv.FormatUint(uint64(c)&0xf, 16) + `'`
}
