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
// Status (issue #13): framing, the transport and its bounds are here and
// tested under an endpoint. Not yet: the session's reliability tuned for a
// reliable carrier, net's "haven+tcp" and the UDP-first dial that falls
// back to TCP, listeners on the UDP port's number (Listen, Host, haven
// serve, ListenStream= in the systemd units), and the return to UDP.
package compat
