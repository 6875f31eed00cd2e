// Package wireshark holds Haven's Wireshark dissector (haven.lua, with
// haven_crypto.lua and haven_msgs.lua; README.md says how to use it) and
// its test: a real session on loopback, captured by a relay into a pcap
// file, decoded by tshark with and without the session's key log
// (docs/KEYLOG.md), and checked field by field against what the test sent.
// The package has no Go API.
package wireshark
