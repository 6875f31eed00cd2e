// Package mux will be Haven's session engine: a sans-I/O state machine that
// takes decrypted packets and the current time, and returns packets to send
// and the next timer deadline. It owns channels, reliability, flow and
// congestion control (docs/ARCHITECTURE.md).
//
// Status: not implemented yet; issue #4 builds it on package wire.
package mux
