package secure

// Amplification factors. Handshake replies to an address never exceed
// the bytes received from it (issue #3; the reply sizes guarantee it), and
// transport packets to a new, unvalidated address of a session never exceed
// three times the bytes received from it (docs/PROTOCOL.md §6.4, as RFC 9000
// §8).
const (
	HandshakeAmplification = 1
	MigrationAmplification = 3
)

// AntiAmplification limits what a sender sends to an address it has not
// validated yet: at most Factor times the bytes received from it. Once the
// address is validated (a PATH_RESPONSE, or an authenticated handshake
// from it) there is no limit. The zero value is an unvalidated address
// with nothing received and factor 1. It is not safe for concurrent use.
type AntiAmplification struct {
	// Factor is the multiple of the received bytes that may be sent;
	// values below 1 count as 1.
	Factor int

	received, sent uint64
	validated      bool
}

// Received records n bytes received from the address.
func (a *AntiAmplification) Received(n int) {
	if n > 0 {
		a.received += uint64(n)
	}
}

// Allow reports whether n more bytes may be sent to the address and, if
// so, counts them as sent. It always allows once the address is validated.
func (a *AntiAmplification) Allow(n int) bool {
	if n < 0 {
		return false
	}
	if a.validated {
		a.sent += uint64(n)
		return true
	}
	f := uint64(max(a.Factor, 1))
	if a.sent+uint64(n) > f*a.received {
		return false
	}
	a.sent += uint64(n)
	return true
}

// Validate marks the address as validated: from now on Allow always
// reports true.
func (a *AntiAmplification) Validate() { a.validated = true }

// Validated reports whether the address has been validated.
func (a *AntiAmplification) Validated() bool { return a.validated }

// Budget returns how many more bytes may be sent before validation, or -1
// once validated (no limit).
func (a *AntiAmplification) Budget() int64 {
	if a.validated {
		return -1
	}
	f := uint64(max(a.Factor, 1))
	if a.sent >= f*a.received {
		return 0
	}
	return int64(f*a.received - a.sent)
}
