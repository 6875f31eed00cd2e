package noise

import (
	"encoding/binary"
	"math"
)

// NonceBuf is a caller-owned buffer for the 96-bit AEAD nonce.
type NonceBuf [12]byte

// EncryptAtWith is EncryptAt with a caller-owned nonce buffer. It changes
// nothing in the CipherState, and the AEAD implementations are safe for
// concurrent use, so several goroutines may seal different messages
// (with different n) under one key at once, each with its own buffer.
func (c *CipherState) EncryptAtWith(nb *NonceBuf, dst []byte, n uint64, ad, plaintext []byte) ([]byte, error) {
	if c.aead == nil {
		return nil, ErrConfig
	}
	if n == math.MaxUint64 {
		return nil, ErrNonceExhausted
	}
	*nb = NonceBuf{}
	if c.cf.bigEndianNonce {
		binary.BigEndian.PutUint64(nb[4:], n)
	} else {
		binary.LittleEndian.PutUint64(nb[4:], n)
	}
	return c.aead.Seal(dst, nb[:], plaintext, ad), nil
}

// DecryptAtWith is DecryptAt with a caller-owned nonce buffer: like
// EncryptAtWith, it changes nothing in the CipherState, so several
// goroutines may open different messages under one key at once.
func (c *CipherState) DecryptAtWith(nb *NonceBuf, dst []byte, n uint64, ad, ciphertext []byte) ([]byte, error) {
	if c.aead == nil {
		return nil, ErrConfig
	}
	if n == math.MaxUint64 {
		return nil, ErrNonceExhausted
	}
	if len(ciphertext) < TagLen {
		return nil, ErrDecrypt
	}
	*nb = NonceBuf{}
	if c.cf.bigEndianNonce {
		binary.BigEndian.PutUint64(nb[4:], n)
	} else {
		binary.LittleEndian.PutUint64(nb[4:], n)
	}
	out, err := c.aead.Open(dst, nb[:], ciphertext, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}
