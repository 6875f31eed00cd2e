// Package compat holds Haven's adapters for paths where UDP does not pass:
// the stream (TCP) fallback transport of docs/PROTOCOL.md §8, which carries
// the very same packets back to back, each delimited by its header's
// payload length field.
//
// StreamTransport implements endpoint.Transport over TCP: a listening one
// (ListenStream) accepts a connection per peer socket, bounded per source
// address and in all, each proving itself with a well-formed first packet
// within FirstPacketTimeout; a dialing one (DialStream) holds one
// connection. An endpoint runs on either exactly as on a UDP socket
// (endpoint.NewWithTransport).
//
// Package net builds on it: the "haven+tcp" networks, listeners that
// accept TCP at their UDP port's number, and dials that fall back to TCP.
// Status (issue #13): a session that fell back does not yet return to UDP.
package compat
