package benchmarks

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestSmoke runs each system's setup once, quickly, and checks what comes
// back: a handshake and one echoed byte, a few KB of bulk counted by the
// server, a request/response, one datagram (Haven, QUIC), and a stream
// through the lossy proxy. CI runs it (go test -short), so that the
// benchmarks' setup never rots.
func TestSmoke(t *testing.T) {
	for _, sys := range streamSystems {
		t.Run(sys, func(t *testing.T) {
			srv, err := listen(sys, options{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.close()
			if err := handshakeEcho(srv, server.connect); err != nil {
				t.Fatalf("handshake and echo: %v", err)
			}
			// Fresh sessions from one client socket, more than a source's
			// handshake burst (Haven's responder wants a cookie after 5).
			for i := 0; i < 8; i++ {
				if err := handshakeEcho(srv, server.dial); err != nil {
					t.Fatalf("session %d on the shared client: %v", i, err)
				}
			}

			e := newEnv(t, sys, options{resume: true})
			defer e.close()
			s := e.openOp(t, opSink)
			chunk := bytes.Repeat([]byte("haven"), 1000)
			if err := sendBulk(s, chunk, 3); err != nil {
				t.Fatalf("bulk: %v", err)
			}
			s.Close()

			s = e.openOp(t, opEcho)
			req := []byte("request, 64 bytes or so .......................................")
			resp := make([]byte, len(req))
			if err := roundTrip(s, req, resp); err != nil || !bytes.Equal(req, resp) {
				t.Fatalf("round trip: %q, %v", resp, err)
			}
			s.Close()
			s, err = e.cl.open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := echoByte(s); err != nil {
				t.Fatalf("open and echo: %v", err)
			}
			s.Close()
		})
	}
	for _, sys := range udpSystems {
		t.Run(sys+"/datagram", func(t *testing.T) {
			p, err := newDatagramPair(sys)
			if err != nil {
				t.Fatal(err)
			}
			defer p.close()
			if err := p.warmUp(10 * time.Second); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(sys+"/lossy", func(t *testing.T) {
			e := newEnv(t, sys, options{loss: 0.02})
			defer e.close()
			s := e.openOp(t, opSink)
			chunk := bytes.Repeat([]byte("lossy"), 20000)
			if err := sendBulk(s, chunk, 5); err != nil {
				t.Fatalf("bulk through the lossy proxy: %v", err)
			}
			s.Close()
		})
	}
}
