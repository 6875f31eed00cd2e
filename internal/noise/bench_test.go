package noise

import "testing"

// BenchmarkHandshake runs one complete IK handshake on Haven's suite, both
// sides: two constructors, two messages written and read, two Splits.
func BenchmarkHandshake(b *testing.B) {
	is, rs := mustGenerate(b), mustGenerate(b)
	iniCfg := Config{Static: is, RemoteStatic: rs.PublicKey(), Prologue: []byte("haven/1")}
	respCfg := Config{Static: rs, Prologue: []byte("haven/1")}
	m1 := make([]byte, 0, 256)
	m2 := make([]byte, 0, 256)
	p := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		ini, err := NewInitiator(iniCfg)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := NewResponder(respCfg)
		if err != nil {
			b.Fatal(err)
		}
		if m1, err = ini.WriteMessage(m1[:0], nil); err != nil {
			b.Fatal(err)
		}
		if p, err = resp.ReadMessage(p[:0], m1); err != nil {
			b.Fatal(err)
		}
		if m2, err = resp.WriteMessage(m2[:0], nil); err != nil {
			b.Fatal(err)
		}
		if p, err = ini.ReadMessage(p[:0], m2); err != nil {
			b.Fatal(err)
		}
		if _, _, err = ini.Split(); err != nil {
			b.Fatal(err)
		}
		if _, _, err = resp.Split(); err != nil {
			b.Fatal(err)
		}
	}
}

func transportPair(b *testing.B) (send, recv *CipherState) {
	is, rs := mustGenerate(b), mustGenerate(b)
	send, _, _, recv = handshakePair(b, Config{Static: is, RemoteStatic: rs.PublicKey()}, Config{Static: rs})
	return send, recv
}

const benchMsgLen = 1400

// BenchmarkTransportSeal seals 1400-byte transport messages into a reused
// buffer (ChaChaPoly).
func BenchmarkTransportSeal(b *testing.B) {
	send, _ := transportPair(b)
	payload := make([]byte, benchMsgLen)
	ad := make([]byte, 16)
	buf := make([]byte, 0, benchMsgLen+TagLen)
	var err error
	b.SetBytes(benchMsgLen)
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = send.EncryptWithAd(buf[:0], ad, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransportOpen opens a 1400-byte transport message by explicit
// counter into a reused buffer (ChaChaPoly).
func BenchmarkTransportOpen(b *testing.B) {
	send, recv := transportPair(b)
	payload := make([]byte, benchMsgLen)
	ad := make([]byte, 16)
	ct, err := send.EncryptWithAd(nil, ad, payload)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, benchMsgLen)
	b.SetBytes(benchMsgLen)
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = recv.DecryptAt(buf[:0], 0, ad, ct); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplayWindow: Check then Accept of an in-order counter.
func BenchmarkReplayWindow(b *testing.B) {
	var w ReplayWindow
	var n uint64
	b.ReportAllocs()
	for b.Loop() {
		if w.Check(n) {
			w.Accept(n)
		}
		n++
	}
}
