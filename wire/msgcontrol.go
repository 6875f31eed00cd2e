package wire

import "encoding/binary"

// MaxReasonLen bounds the reason text of CLOSE and REFUSE.
const MaxReasonLen = 512

// Session close codes (CLOSE on channel 0), docs/PROTOCOL.md §5.3.
const (
	CloseNormal        uint32 = 0       // the application closed the session
	CloseProtocol      uint32 = 1       // the peer broke this specification
	CloseInternal      uint32 = 2       // an implementation error
	CloseFlowControl   uint32 = 3       // data beyond an announced limit
	CloseChannelLimit  uint32 = 4       // more channels than MAX_CHANNELS allowed
	CloseIdle          uint32 = 5       // nothing received for the idle timeout
	CloseRestarting    uint32 = 6       // server restarting: reconnect
	CloseShuttingDown  uint32 = 7       // server going away: do not reconnect soon
	CloseKeyExhausted  uint32 = 8       // keys reached their message limit unrenewed
	CloseApplicationLo uint32 = 0x10000 // codes from here on belong to applications
)

// Close ends the scope of its packet's channel. On channel 0 it closes the
// session abruptly; on channel N it tells the peer that the sender will read
// no more of N, so the peer stops sending (and ends its side with a FIN or
// RESET). The argument is the code; the body the reason, UTF-8 text.
type Close struct {
	Code   uint32
	Reason []byte // aliases the packet after Parse; at most MaxReasonLen
}

func (m *Close) Len() int { return MsgHeaderLen + min(len(m.Reason), MaxReasonLen) }

// Append appends the CLOSE; a longer reason is cut to MaxReasonLen bytes.
func (m *Close) Append(b []byte) []byte {
	r := m.Reason[:min(len(m.Reason), MaxReasonLen)]
	b = appendHeader(b, MsgClose, 0, len(r), m.Code)
	return append(b, r...)
}

func (m *Close) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgClose, 0)
	if err != nil {
		return err
	}
	if len(body) > MaxReasonLen {
		return ErrMessageBody
	}
	m.Code, m.Reason = h.Arg, body
	return nil
}

// MaxData raises a flow-control limit: on channel 0 the session's (total
// stream bytes the peer may send), on channel N that channel's (the highest
// stream offset the peer may send). Body: the new limit, u64.
type MaxData struct{ Max uint64 }

func (m *MaxData) Len() int { return MsgHeaderLen + 8 }
func (m *MaxData) Append(b []byte) []byte {
	return binary.LittleEndian.AppendUint64(appendHeader(b, MsgMaxData, 0, 8, 0), m.Max)
}
func (m *MaxData) Parse(b []byte) error {
	body, err := fixedBody(b, MsgMaxData, 8)
	if err == nil {
		m.Max = le64(body)
	}
	return err
}

// Blocked says the sender has data it cannot send because of the limit in
// the body (scoped like MAX_DATA). It feeds the receiver's window tuning.
type Blocked struct{ Limit uint64 }

func (m *Blocked) Len() int { return MsgHeaderLen + 8 }
func (m *Blocked) Append(b []byte) []byte {
	return binary.LittleEndian.AppendUint64(appendHeader(b, MsgBlocked, 0, 8, 0), m.Limit)
}
func (m *Blocked) Parse(b []byte) error {
	body, err := fixedBody(b, MsgBlocked, 8)
	if err == nil {
		m.Limit = le64(body)
	}
	return err
}

// MaxChannels raises the cumulative number of channels the peer may open
// over the session's life (channel 0 only). The argument is the count.
type MaxChannels struct{ Max uint32 }

func (m *MaxChannels) Len() int { return MsgHeaderLen }
func (m *MaxChannels) Append(b []byte) []byte {
	return appendHeader(b, MsgMaxChannels, 0, 0, m.Max)
}
func (m *MaxChannels) Parse(b []byte) error {
	h, body, err := openMessage(b, MsgMaxChannels, 0)
	if err != nil {
		return err
	}
	if len(body) != 0 {
		return ErrMessageBody
	}
	m.Max = h.Arg
	return nil
}

// PathChallenge asks the peer to echo Data from the address the challenge
// reached (channel 0 only): the proof that a new address is the peer's.
type PathChallenge struct{ Data [8]byte }

func (m *PathChallenge) Len() int { return MsgHeaderLen + 8 }
func (m *PathChallenge) Append(b []byte) []byte {
	return append(appendHeader(b, MsgPathChallenge, 0, 8, 0), m.Data[:]...)
}
func (m *PathChallenge) Parse(b []byte) error {
	body, err := fixedBody(b, MsgPathChallenge, 8)
	if err == nil {
		copy(m.Data[:], body)
	}
	return err
}

// PathResponse echoes a PathChallenge's Data (channel 0 only).
type PathResponse struct{ Data [8]byte }

func (m *PathResponse) Len() int { return MsgHeaderLen + 8 }
func (m *PathResponse) Append(b []byte) []byte {
	return append(appendHeader(b, MsgPathResponse, 0, 8, 0), m.Data[:]...)
}
func (m *PathResponse) Parse(b []byte) error {
	body, err := fixedBody(b, MsgPathResponse, 8)
	if err == nil {
		copy(m.Data[:], body)
	}
	return err
}
