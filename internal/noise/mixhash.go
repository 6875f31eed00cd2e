package noise

// MixHash mixes application data into the handshake hash,
// h = HASH(h || data), the MixHash operation of the Noise specification
// §5.2, so that the next handshake message authenticates data as well: its
// encrypted parts use h as associated data, and the keys of every later
// message and of Split depend on it.
//
// This is an application extension, not part of the IK pattern: it
// applies the specification's MixHash (§5.2) to cleartext data adjacent to
// a handshake message, as §6 applies it to the prologue before the first
// one. Haven uses it to bind the cleartext packet header around each
// handshake message. Both sides must make identical calls, with the same
// data in the same order, before the same message: the writer before
// WriteMessage, the reader before ReadMessage. Any difference makes that
// message fail to authenticate (both IK messages end with an encrypted
// payload, whose tag covers h). A handshake that calls MixHash does not
// interoperate with a plain Noise IK peer, and the published test vectors
// never call it.
//
// Data mixed since the previous message belongs to the next message: if
// that WriteMessage or ReadMessage fails, the mixes are undone together
// with the message, and the state is as it was before them. A receiver
// that drops a forged packet therefore calls MixHash again with the header
// of the next packet it tries, exactly as it did for the forged one.
//
// MixHash fails with ErrAlreadySplit after Split, with
// ErrHandshakeComplete once both messages have been processed, and with
// ErrConfig on a state that is not initialized. It never allocates.
func (hs *HandshakeState) MixHash(data []byte) error {
	if !hs.ready() {
		return errNotInitialized
	}
	if hs.split {
		return ErrAlreadySplit
	}
	if hs.Complete() {
		return ErrHandshakeComplete
	}
	if !hs.mixPending {
		hs.preMix = hs.st.ss.h
		hs.mixPending = true
	}
	hs.st.ss.MixHash(data)
	return nil
}

// settleMix ends the binding of pending MixHash data to a message: on
// success the data stays in h, on failure h returns to its value before
// the first pending MixHash. WriteMessage and ReadMessage call it on every
// return, after restoring the rest of the state.
func (hs *HandshakeState) settleMix(err error) {
	if !hs.mixPending {
		return
	}
	if err != nil {
		hs.st.ss.h = hs.preMix
	}
	hs.mixPending = false
	clear(hs.preMix[:])
}
