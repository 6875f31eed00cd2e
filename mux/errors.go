package mux

import (
	"errors"
	"fmt"

	"github.com/havenproto/haven/wire"
)

// Errors returned by the channel API. They are values so the layer above
// can map them onto net errors (net.ErrClosed and friends).
var (
	ErrSessionClosed  = errors.New("mux: session closed")
	ErrChannelClosed  = errors.New("mux: channel closed")
	ErrUnknownChannel = errors.New("mux: no such channel")
	ErrWrongType      = errors.New("mux: operation does not fit the channel type")
	ErrChannelLimit   = errors.New("mux: the peer allows no more channels now")
	ErrWriteClosed    = errors.New("mux: channel closed for writing")
	ErrDatagramSize   = errors.New("mux: datagram larger than 65507 bytes")
	ErrQueueFull      = errors.New("mux: datagram queue full")
	ErrServiceName    = errors.New("mux: service name longer than 255 bytes")
)

// CloseError says why a session ended: the code and reason of a CLOSE on
// channel 0 (sent or received), or a local condition such as an idle timeout.
type CloseError struct {
	Code   uint32
	Reason string
	Remote bool // the peer closed the session
}

func (e *CloseError) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	if e.Reason == "" {
		return fmt.Sprintf("mux: session closed by %s: %s", who, codeName(e.Code))
	}
	return fmt.Sprintf("mux: session closed by %s: %s: %s", who, codeName(e.Code), e.Reason)
}

// Is makes errors.Is(err, ErrSessionClosed) hold for every CloseError.
func (e *CloseError) Is(target error) bool { return target == ErrSessionClosed }

func codeName(c uint32) string {
	names := map[uint32]string{
		wire.CloseNormal: "no error", wire.CloseProtocol: "protocol error",
		wire.CloseInternal: "internal error", wire.CloseFlowControl: "flow control error",
		wire.CloseChannelLimit: "channel limit exceeded", wire.CloseIdle: "idle timeout",
		wire.CloseRestarting: "server restarting", wire.CloseShuttingDown: "server shutting down",
		wire.CloseKeyExhausted: "keys exhausted",
	}
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("code %#x", c)
}

// ChannelError reports how a channel ended other than cleanly: refused by
// the peer, reset, or closed by the peer with a code.
type ChannelError struct {
	Channel uint32
	Refused bool   // the OPEN was refused (Code is a REFUSE reason)
	Reset   bool   // the peer reset its sending side
	Code    uint32 // REFUSE reason, RESET code or CLOSE code
	Reason  string // REFUSE text
}

func (e *ChannelError) Error() string {
	switch {
	case e.Refused:
		return fmt.Sprintf("mux: channel %d refused (reason %d): %s", e.Channel, e.Code, e.Reason)
	case e.Reset:
		return fmt.Sprintf("mux: channel %d reset by peer (code %d)", e.Channel, e.Code)
	}
	return fmt.Sprintf("mux: channel %d closed by peer (code %d)", e.Channel, e.Code)
}

// protocolError is how the receive path reports a peer that broke the
// protocol; Receive turns it into a CLOSE with the code.
type protocolError struct {
	code   uint32
	reason string
}

func (e *protocolError) Error() string { return "mux: " + e.reason }

func violation(reason string) error { return &protocolError{code: wire.CloseProtocol, reason: reason} }
