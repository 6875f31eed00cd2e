package secure

import (
	"encoding/hex"
	"io"
	"strconv"
	"sync"

	"github.com/havenproto/haven/internal/noise"
	"github.com/havenproto/haven/wire"
)

// KeyLogLabel is the first word of each line a KeyLog writes.
const KeyLogLabel = "HAVEN_TRAFFIC_KEY"

// KeyLog writes the transport keys of sessions as lines of text, so that a
// packet capture can be decrypted (contrib/wireshark), as SSLKEYLOGFILE does
// for TLS. The format is in docs/KEYLOG.md: one line per key and direction,
//
//	HAVEN_TRAFFIC_KEY <protocol id> <source id> <destination id> <key phase> <alignment> <key>
//
// with the ids as the 16 hex digits of their header bytes, the key phase 0
// or 1, the session's alignment in bytes and the 32-byte key in hex.
//
// Whoever reads the log can read and forge every packet of the sessions
// logged: it is a secret, for debugging only. A Transport given one in its
// Limits writes both directions' keys of every key set it installs, the
// first handshake's and each rekey's. Write errors are ignored (a session
// never fails for its key log).
type KeyLog struct {
	w io.Writer
}

// keyLogMu serialises the writes of every KeyLog: one writer may be shared
// by several endpoints, and a handshake is rare enough for one lock.
var keyLogMu sync.Mutex

// NewKeyLog returns a KeyLog writing to w, or nil if w is nil.
func NewKeyLog(w io.Writer) *KeyLog {
	if w == nil {
		return nil
	}
	return &KeyLog{w: w}
}

// logSet writes the two lines of key set ks of transport t, whose session
// has alignment align, in one Write.
func (l *KeyLog) logSet(t *Transport, ks *keySet, align int) {
	var buf [2 * keyLogLineLen]byte
	b := appendKeyLine(buf[:0], t.suite, t.localID, t.remoteID, ks.phase, align, &ks.send)
	b = appendKeyLine(b, t.suite, t.remoteID, t.localID, ks.phase, align, &ks.recv)
	keyLogMu.Lock()
	l.w.Write(b)
	keyLogMu.Unlock()
	clear(buf[:])
}

// keyLogLineLen bounds one line: the label, 16+16+16 hex digits, a phase,
// an alignment of up to 2 digits, 64 hex digits, six spaces and a newline.
const keyLogLineLen = len(KeyLogLabel) + 3*16 + 1 + 2 + 64 + 7

// appendKeyLine appends the line of the key cs seals packets from src to
// dst with (nothing if cs has no key).
func appendKeyLine(b []byte, s wire.Suite, src, dst wire.PeerID, phase bool, align int, cs *noise.CipherState) []byte {
	key, ok := cs.ExportKey()
	if !ok {
		return b
	}
	id := s.ProtocolID()
	b = append(b, KeyLogLabel...)
	b = append(b, ' ')
	b = hex.AppendEncode(b, id[:])
	b = append(b, ' ')
	b = hex.AppendEncode(b, src[:])
	b = append(b, ' ')
	b = hex.AppendEncode(b, dst[:])
	b = append(b, ' ')
	if phase {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(align), 10)
	b = append(b, ' ')
	b = hex.AppendEncode(b, key[:])
	clear(key[:])
	return append(b, '\n')
}
