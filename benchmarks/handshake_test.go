package benchmarks

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkHandshake: a fresh client (its own socket; its identity, key
// or certificate, made in advance) connects, opens a stream, and has its first byte echoed; then it
// closes. Both ends authenticate: Haven by Noise IK, QUIC and TLS by
// Ed25519 certificates verified against a root on both sides, with X25519
// key exchange. allocs/op counts both ends (they share the process).
func BenchmarkHandshake(b *testing.B) {
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) {
			// Haven: 1,024 client identities in turn, so that no peer
			// redials while the server may still be closing its previous
			// session: that races into a deadlock of the server's
			// endpoint (see docs/PERFORMANCE.md, "Haven bugs found").
			srv, err := listen(sys, options{identities: 1024})
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
		})
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
