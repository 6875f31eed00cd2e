package benchmarks

import (
	"context"
	"testing"
)

// BenchmarkOpenEcho: on an established session, open a stream, write one
// byte (with the opcode), read its echo, close the stream. Haven opens a
// channel without waiting for the peer's ACCEPT, QUIC a stream
// (OpenStreamSync), and TLS, which has no streams, a new TCP connection
// with a TLS 1.3 resumption (session ticket: PSK with X25519), the cheapest
// new TLS connection to a server already known.
func BenchmarkOpenEcho(b *testing.B) { benchOpenEcho(b, options{resume: true}) }

// BenchmarkOpenDialEcho is BenchmarkOpenEcho with Haven's channel opened
// the way net code opens one: Dialer.Dial to the peer, which finds the live
// session and returns once the peer has accepted the channel (a round
// trip), against quic-go's OpenStreamSync and a resumed TLS connection.
func BenchmarkOpenDialEcho(b *testing.B) { benchOpenEcho(b, options{resume: true, dialOpen: true}) }

func benchOpenEcho(b *testing.B, o options) {
	for _, sys := range streamSystems {
		b.Run(sys, func(b *testing.B) {
			e := newEnv(b, sys, o)
			defer e.close()
			defer watchdog(b, e.close)()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := e.cl.open(ctx)
				if err != nil {
					b.Fatalf("open %d: %v", i, err)
				}
				err = echoByte(s)
				s.Close()
				if err != nil {
					b.Fatalf("echo %d: %v", i, err)
				}
			}
		})
	}
}
