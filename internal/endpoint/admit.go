package endpoint

import "github.com/havenproto/haven/wire"

// CloseSessions closes, with code and reason, every session of this
// endpoint whose peer key match reports true, and returns how many it
// closed. Sessions still waiting for the peer's key confirmation are
// included; dials this endpoint is running are not.
//
// It is how a server applies a narrower Config.Authorize: change what
// Authorize answers first, then close the sessions it no longer admits
// (for example CloseSessions(func(k) bool { return !authorize(k) }, …)).
// A handshake that Authorize admitted under the old answer and that is
// still being processed is waited for, so its session is closed too; a
// handshake that starts after this call began sees the new answer.
//
// match is called without any lock of the endpoint held, once per
// session.
func (ep *Endpoint) CloseSessions(match func(peer wire.PublicKey) bool, code uint32, reason string) int {
	ep.admitMu.Lock()
	all := ep.liveSessions()
	ep.admitMu.Unlock()
	n := 0
	for _, s := range all {
		if match(s.peer) {
			s.Close(code, reason)
			n++
		}
	}
	return n
}

// Admits reports whether Config.Authorize admits peer (true when it is
// nil): what a dial to peer would be refused for before anything is sent.
func (ep *Endpoint) Admits(peer wire.PublicKey) bool {
	return ep.cfg.Authorize == nil || ep.cfg.Authorize(peer)
}
