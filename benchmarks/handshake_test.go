package benchmarks

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkHandshake: a fresh client (its own socket; its identity, key
// or certificate, made in advance) connects, opens a stream, and has its
// first byte echoed; then it closes. Both ends authenticate: Haven by
// Noise IK, QUIC and TLS by Ed25519 certificates verified against a root
// on both sides, with X25519 key exchange. allocs/op counts both ends
// (they share the process). Every Haven client uses the same key, as every
// QUIC and TLS client presents the same certificate: a returning client,
// for which Haven's static-static DH is cached (internal/noise/sscache.go).
func BenchmarkHandshake(b *testing.B) {
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) { benchHandshake(b, sys, 1) })
	}
}

// BenchmarkHandshakeNewPeers: BenchmarkHandshake with 1,024 Haven client
// keys in turn, against a fresh server each run, so that almost every
// handshake is a first meeting of two keys and nothing is cached. QUIC and
// TLS run exactly as in BenchmarkHandshake (a certificate handshake caches
// nothing across connections).
func BenchmarkHandshakeNewPeers(b *testing.B) {
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) { benchHandshake(b, sys, 1024) })
	}
}

func benchHandshake(b *testing.B, sys string, identities int) {
	srv, err := listen(sys, options{identities: identities})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.close()
	defer watchdog(b, srv.close)()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := handshakeEcho(srv); err != nil {
			b.Fatalf("handshake %d: %v", i, err)
		}
	}
}

// handshakeEcho connects a fresh client, echoes one byte and closes.
func handshakeEcho(srv server) error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	cl, s, err := srv.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.close()
	defer s.Close()
	return echoByte(s)
}

// echoMsg is the echo opcode and the one byte to be echoed, in one write.
var echoMsg = []byte{opEcho, 'x'}

// echoByte writes echoMsg on a new stream and reads the byte back.
func echoByte(s stream) error {
	if _, err := s.Write(echoMsg); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		return err
	}
	if b[0] != 'x' {
		return fmt.Errorf("echoed %q, want %q", b[0], 'x')
	}
	return nil
}
