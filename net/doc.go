// Package net will be Haven's public API, mirroring the standard library's
// net package so that changing the import is the whole migration: Dial,
// Listen, ListenPacket, Dialer, ListenConfig and Addr over the networks
// "haven", "haven4" and "haven6".
//
// Status: not implemented yet; issue #5. The key and address types it will
// re-export exist today in package wire.
package net
