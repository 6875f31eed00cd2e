// Package listener will hold the accepting side of Haven's socket layer:
// one UDP socket serving every session, sessions found by peer ids, the
// responder role of the handshake, named services and systemd socket
// activation (docs/ARCHITECTURE.md).
//
// Status: not implemented yet; issues #5 and #6.
package listener
