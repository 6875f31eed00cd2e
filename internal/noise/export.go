package noise

// ExportKey returns a copy of the cipher key k and whether there is one.
// It exists for key logs (docs/KEYLOG.md), which write transport keys out
// so that a capture can be decrypted; nothing else should read a key.
func (c *CipherState) ExportKey() (k [KeyLen]byte, ok bool) {
	if !c.keyed {
		return k, false
	}
	return c.k, true
}
