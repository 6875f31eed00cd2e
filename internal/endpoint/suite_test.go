package endpoint

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/havenproto/haven/internal/secure"
	"github.com/havenproto/haven/wire"
)

// TestSuitesAndRekey: one listener serves a client of each construction
// (PROTOCOL.md §2.1) at once; each session speaks its dialer's suite on
// both sides, and keeps it through several rekeys in the middle of
// transfers that arrive byte-exact. The rekey threshold is lowered (a
// key set per 200 packets) so that rekeys happen within the test.
func TestSuitesAndRekey(t *testing.T) {
	lim := secure.Limits{RekeyAfterMessages: 32}
	server, err := Listen("udp4", loopback, Config{Accept: true, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close(wire.CloseNormal, "")
	svc, err := server.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	go echo(svc)
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i*13 + i>>11)
	}
	for _, suite := range []wire.Suite{wire.SuiteChaChaPoly, wire.SuiteAESGCM} {
		t.Run(suite.String(), func(t *testing.T) {
			client, err := Listen("udp4", loopback, Config{Limits: lim, Handshake: secure.HandshakeConfig{Suite: suite}})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close(wire.CloseNormal, "")
			s, err := client.Session(ctx(t), server.PublicKey(), server.LocalAddr())
			if err != nil {
				t.Fatal(err)
			}
			// Echo 4 MiB at a time until the client has rekeyed twice (a
			// rekey completes a round trip after the threshold), at most
			// 40 rounds; every round must come back byte-exact.
			rekeys := uint64(0)
			for round := 0; round < 40 && rekeys < 2; round++ {
				st, err := s.OpenStream("", 3)
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					st.Write(data)
					st.CloseWrite()
				}()
				st.SetReadDeadline(time.Now().Add(60 * time.Second))
				got, err := io.ReadAll(st)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("round %d: echo %d of %d bytes, %v", round, len(got), len(data), err)
				}
				st.Close()
				s.mu.Lock()
				rekeys = s.tr.KeySets() - 1
				s.mu.Unlock()
			}
			if rekeys < 2 {
				t.Fatalf("client session rekeyed %d times in 40 rounds, want at least 2", rekeys)
			}
			local, remote := s.IDs()
			if s.Suite() != suite || local.Auth() != client.id.AuthTagFor(suite) ||
				remote.Auth() != suite.AuthTag(server.PublicKey()) {
				t.Fatalf("client session: suite %v, ids %v %v", s.Suite(), local, remote)
			}
			server.mu.Lock()
			var peer *Session
			for _, ss := range server.sessions {
				if ss != nil && ss.peer == client.PublicKey() {
					peer = ss
				}
			}
			server.mu.Unlock()
			if peer == nil || peer.Suite() != suite {
				t.Fatalf("server side of the session: %v", peer)
			}
		})
	}
}
