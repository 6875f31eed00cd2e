// Package compat holds Haven's adapters for paths where UDP does not pass:
// the stream (TCP) fallback transport of docs/PROTOCOL.md §8, which carries
// the very same packets back to back, each delimited by its header's
// payload length field.
//
// Status (issue #13): the framing is here (Reader, Frame, WritePackets,
// ReadFirstPacket), with the bounds a listener needs against hostile
// streams. The transport that plugs TCP connections into an endpoint, the
// listener on the UDP port's number and the dialer's fallback are not yet.
package compat
