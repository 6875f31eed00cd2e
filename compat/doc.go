// Package compat will hold Haven's adapters: the stream (TCP) fallback
// transport of docs/PROTOCOL.md §8 and helpers that fit Haven into code
// written for other transports.
//
// Status: not implemented yet.
package compat
