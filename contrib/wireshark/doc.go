// Package wireshark holds Haven's Wireshark dissector (haven.lua, with
// haven_crypto.lua and haven_msgs.lua; README.md says how to use it) and
// its tests: real sessions on loopback, captured by a relay into a pcap
// file, and `haven demo` itself, captured by dumpcap in a network namespace
// of the test's own, decoded by tshark with and without the sessions' key
// log (docs/KEYLOG.md) and checked field by field against what was sent.
// The package has no Go API.
package wireshark
