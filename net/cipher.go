package net

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/havenproto/haven/wire"
	"golang.org/x/sys/cpu"
)

// Cipher selects the construction, and so the AEAD, of the sessions a
// Dialer or Host starts (docs/PROTOCOL.md §2.1). Nothing is negotiated: each
// construction has its own protocol id, a dialer picks one per session, and
// every listener serves both on one port, answering each initiation in the
// construction it arrived in. Cipher has no effect on what a listener
// accepts.
type Cipher uint8

const (
	// CipherAuto, the default, picks AES-256-GCM when this machine's CPU
	// has AES and carry-less multiplication instructions (AES-NI and
	// PCLMULQDQ on amd64, the AES and PMULL extensions on arm64, their
	// counterparts on s390x and ppc64le), where it runs about twice as
	// fast as ChaCha20-Poly1305, and ChaCha20-Poly1305 elsewhere, where it
	// is the faster one and constant-time. The choice follows the dialing
	// machine's CPU, as crypto/tls's cipher order does.
	CipherAuto Cipher = iota
	// CipherChaCha20Poly1305 is Noise_IK_25519_ChaChaPoly_BLAKE2s, the
	// first construction of haven/1.
	CipherChaCha20Poly1305
	// CipherAES256GCM is Noise_IK_25519_AESGCM_BLAKE2s.
	CipherAES256GCM
)

// String names the cipher.
func (c Cipher) String() string {
	switch c {
	case CipherAuto:
		return "auto (" + c.suite().String() + ")"
	case CipherChaCha20Poly1305:
		return "ChaCha20-Poly1305"
	case CipherAES256GCM:
		return "AES-256-GCM"
	}
	return "unknown cipher"
}

// suite returns the wire suite c stands for on this machine. An unknown
// Cipher gives an invalid suite, which fails every dial with a
// configuration error.
func (c Cipher) suite() wire.Suite {
	switch c {
	case CipherChaCha20Poly1305:
		return wire.SuiteChaChaPoly
	case CipherAES256GCM:
		return wire.SuiteAESGCM
	case CipherAuto:
	default:
		return wire.NumSuites
	}
	if hasAESHardware {
		return wire.SuiteAESGCM
	}
	return wire.SuiteChaChaPoly
}

// hasAESHardware reports whether the Go runtime's AES-GCM runs on AES
// instructions here (the conditions crypto/aes and crypto/cipher use for
// their assembly).
var hasAESHardware = func() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	case "ppc64le":
		return true // POWER8 and later, which ppc64le requires, have AES and GHASH instructions
	}
	return false
}()

// cipherOf returns the Cipher of a session of suite s, for Session.Cipher.
func cipherOf(s wire.Suite) Cipher {
	if s == wire.SuiteAESGCM {
		return CipherAES256GCM
	}
	return CipherChaCha20Poly1305
}

// cipherNames are the text forms of the Ciphers, as MarshalText writes
// them and UnmarshalText reads them (flags, configuration files).
var cipherNames = [...]string{CipherAuto: "auto", CipherChaCha20Poly1305: "chacha20-poly1305", CipherAES256GCM: "aes-256-gcm"}

// MarshalText returns "auto", "chacha20-poly1305" or "aes-256-gcm".
func (c Cipher) MarshalText() ([]byte, error) {
	if int(c) >= len(cipherNames) {
		return nil, fmt.Errorf("haven: unknown cipher %d", uint8(c))
	}
	return []byte(cipherNames[c]), nil
}

// UnmarshalText reads the forms MarshalText writes, in any case.
func (c *Cipher) UnmarshalText(b []byte) error {
	for i, n := range cipherNames {
		if strings.EqualFold(string(b), n) {
			*c = Cipher(i)
			return nil
		}
	}
	return fmt.Errorf("haven: unknown cipher %q (want auto, chacha20-poly1305 or aes-256-gcm)", b)
}
