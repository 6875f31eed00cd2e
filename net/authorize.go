package net

import (
	"errors"

	"github.com/havenproto/haven/internal/secure"
)

// ErrUnauthorized is what errors.Is matches in the error of a Dial that
// this side's Config.Authorize refused (whose cause is an *AuthorizeError).
// A PacketConn's datagrams to a refused peer are dropped, as on an
// unreachable path, like every datagram whose session cannot be made.
var ErrUnauthorized = secure.ErrUnauthorized

// AuthorizeError is the cause (inside a *net.OpError) of a Dial that this
// side's Config.Authorize refused: Peer is the server's public key. Nothing
// was sent to the server. It matches ErrUnauthorized under errors.Is.
type AuthorizeError struct {
	Peer PublicKey
}

func (e *AuthorizeError) Error() string {
	return "haven: peer " + e.Peer.String() + " refused by Config.Authorize"
}

// Unwrap returns ErrUnauthorized.
func (e *AuthorizeError) Unwrap() error { return ErrUnauthorized }

// authorizeError turns the endpoint's refusal of peer into an
// *AuthorizeError, and returns any other error as it is.
func authorizeError(err error, peer PublicKey) error {
	if errors.Is(err, ErrUnauthorized) {
		return &AuthorizeError{Peer: peer}
	}
	return err
}

// CloseSessions closes, with code and reason, every session of the Host
// whose peer's public key match reports true, and returns how many it
// closed; their channels fail with the close (a *mux.CloseError naming
// code and reason on the peer's side). It is how a server applies a
// narrower Config.Authorize: change what Authorize answers first, then
// close what it no longer admits:
//
//	h.CloseSessions(func(k net.PublicKey) bool { return !authorize(k) }, net.CloseShuttingDown, "key no longer authorized")
//
// A handshake that Authorize admitted before the change and that is still
// in progress is waited for and its session closed too. Sessions of other
// peers are untouched. match runs without any lock of the Host held.
func (h *Host) CloseSessions(match func(peer PublicKey) bool, code uint32, reason string) int {
	return h.ep.CloseSessions(match, code, reason)
}
