package benchmarks

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkHandshake: a fresh session from a client that keeps its socket
// (Haven: one Dialer; QUIC: one Transport; TLS: a new TCP connection, as
// always) opens a stream, has its first byte echoed, and ends the session.
// Both ends authenticate: Haven by Noise IK, QUIC and TLS by Ed25519
// certificates verified against a root on both sides, with X25519 key
// exchange. allocs/op counts both ends (they share the process). Every
// Haven client uses the same key, as every QUIC and TLS client presents
// the same certificate: a returning client, for which Haven's
// static-static DH is cached (internal/noise/sscache.go).
func BenchmarkHandshake(b *testing.B) {
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) { benchHandshake(b, sys, 1, server.dial) })
	}
}

// BenchmarkHandshakeNewClient: BenchmarkHandshake with a fresh client
// each time, its own socket included (Haven: a new Dialer; QUIC:
// quic.DialAddr), its identity made in advance.
func BenchmarkHandshakeNewClient(b *testing.B) {
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) { benchHandshake(b, sys, 1, server.connect) })
	}
}

// BenchmarkHandshakeNewPeers: BenchmarkHandshakeNewClient with 1,024 Haven
// client keys in turn, against a fresh server each run, so that almost
// every handshake is a first meeting of two keys and nothing is cached.
// QUIC and TLS run exactly as in BenchmarkHandshakeNewClient (a
// certificate handshake caches nothing across connections).
func BenchmarkHandshakeNewPeers(b *testing.B) {
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) { benchHandshake(b, sys, 1024, server.connect) })
	}
}

// benchHandshake runs b.N handshakes with connect, which is server.dial
// or server.connect.
func benchHandshake(b *testing.B, sys string, identities int,
	connect func(server, context.Context) (client, stream, error)) {
	srv, err := listen(sys, options{identities: identities})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.close()
	defer watchdog(b, srv.close)()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := handshakeEcho(srv, connect); err != nil {
			b.Fatalf("handshake %d: %v", i, err)
		}
	}
}

// handshakeEcho connects a fresh client or session, echoes one byte and
// closes.
func handshakeEcho(srv server, connect func(server, context.Context) (client, stream, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	cl, s, err := connect(srv, ctx)
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
