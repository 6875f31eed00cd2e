// Package dialer will hold the initiating side of Haven's socket layer: one
// UDP socket per Dialer, one session per remote peer, the initiator role of
// the handshake, and batched socket I/O (docs/ARCHITECTURE.md).
//
// Status: not implemented yet; issue #5.
package dialer
