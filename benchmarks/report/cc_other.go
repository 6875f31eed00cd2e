//go:build !linux

package main

// tcpCongestion is not known here.
func tcpCongestion() string { return "" }
