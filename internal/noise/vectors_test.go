package noise

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// The public Noise test vectors for IK and IKpsk2 over the eight
// 25519 suites (the cacophony/snow format, all fields hex).
const vectorsPath = "../../testdata/noise-ik-vectors.json"

// wantVectors is how many vectors the file must hold: if it shrinks, the
// suite silently stops covering something, so that is a failure.
const wantVectors = 16

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

type vector struct {
	ProtocolName     string     `json:"protocol_name"`
	InitPrologue     hexBytes   `json:"init_prologue"`
	InitPSKs         []hexBytes `json:"init_psks"`
	InitStatic       hexBytes   `json:"init_static"`
	InitEphemeral    hexBytes   `json:"init_ephemeral"`
	InitRemoteStatic hexBytes   `json:"init_remote_static"`
	RespPrologue     hexBytes   `json:"resp_prologue"`
	RespPSKs         []hexBytes `json:"resp_psks"`
	RespStatic       hexBytes   `json:"resp_static"`
	RespEphemeral    hexBytes   `json:"resp_ephemeral"`
	HandshakeHash    hexBytes   `json:"handshake_hash"`
	Messages         []struct {
		Payload    hexBytes `json:"payload"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"messages"`
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		tb.Fatalf("reading vectors: %v", err)
	}
	var file struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		tb.Fatalf("parsing vectors: %v", err)
	}
	return file.Vectors
}

// findVector returns the vector with the given protocol name.
func findVector(tb testing.TB, name string) vector {
	tb.Helper()
	for _, v := range loadVectors(tb) {
		if v.ProtocolName == name {
			return v
		}
	}
	tb.Fatalf("no vector %q", name)
	return vector{}
}

func mustKeyPair(tb testing.TB, priv []byte) *KeyPair {
	tb.Helper()
	kp, err := NewKeyPair(priv)
	if err != nil {
		tb.Fatalf("NewKeyPair: %v", err)
	}
	return kp
}

func onePSK(tb testing.TB, psks []hexBytes) []byte {
	tb.Helper()
	switch len(psks) {
	case 0:
		return nil
	case 1:
		return psks[0]
	}
	tb.Fatalf("IK takes at most one psk, vector has %d", len(psks))
	return nil
}

// vectorConfigs builds both sides' configurations, with the vector's
// fixed ephemerals.
func vectorConfigs(tb testing.TB, v vector) (ini, resp Config) {
	tb.Helper()
	suite, psk, err := ParseProtocolName(v.ProtocolName)
	if err != nil {
		tb.Fatalf("ParseProtocolName: %v", err)
	}
	if psk != (len(v.InitPSKs) > 0) || psk != (len(v.RespPSKs) > 0) {
		tb.Fatalf("psk modifier and psks disagree")
	}
	if got := suite.ProtocolName(psk); got != v.ProtocolName {
		tb.Fatalf("ProtocolName round trip: got %q", got)
	}
	ini = Config{
		Static:    mustKeyPair(tb, v.InitStatic),
		Prologue:  v.InitPrologue,
		PSK:       onePSK(tb, v.InitPSKs),
		Suite:     suite,
		Ephemeral: mustKeyPair(tb, v.InitEphemeral),
	}
	copy(ini.RemoteStatic[:], v.InitRemoteStatic)
	resp = Config{
		Static:    mustKeyPair(tb, v.RespStatic),
		Prologue:  v.RespPrologue,
		PSK:       onePSK(tb, v.RespPSKs),
		Suite:     suite,
		Ephemeral: mustKeyPair(tb, v.RespEphemeral),
	}
	return ini, resp
}

func TestVectors(t *testing.T) {
	vectors := loadVectors(t)
	ran := 0
	for _, v := range vectors {
		// Twice: the second pass takes the static-static DH from the
		// cache (sscache.go) and must reproduce every byte all the same.
		ok := t.Run(v.ProtocolName, func(t *testing.T) { runVector(t, v) })
		ok = t.Run(v.ProtocolName+"/cached", func(t *testing.T) { runVector(t, v) }) && ok
		if ok {
			ran++
		}
	}
	if len(vectors) != wantVectors {
		t.Errorf("vector file holds %d vectors, want %d", len(vectors), wantVectors)
	}
	if ran != wantVectors {
		t.Errorf("%d vectors passed, want %d", ran, wantVectors)
	}
}

func runVector(t *testing.T, v vector) {
	if len(v.Messages) < 2 {
		t.Fatalf("vector has %d messages, want the 2 handshake messages at least", len(v.Messages))
	}
	iniCfg, respCfg := vectorConfigs(t, v)
	ini, err := NewInitiator(iniCfg)
	if err != nil {
		t.Fatalf("NewInitiator: %v", err)
	}
	resp, err := NewResponder(respCfg)
	if err != nil {
		t.Fatalf("NewResponder: %v", err)
	}

	// Handshake: message 0 initiator -> responder, message 1 back.
	for i, m := range v.Messages[:2] {
		w, r := ini, resp
		if i == 1 {
			w, r = resp, ini
		}
		ct, err := w.WriteMessage(nil, m.Payload)
		if err != nil {
			t.Fatalf("message %d: WriteMessage: %v", i, err)
		}
		if !bytes.Equal(ct, m.Ciphertext) {
			t.Fatalf("message %d ciphertext:\n got %x\nwant %x", i, ct, m.Ciphertext)
		}
		pt, err := r.ReadMessage(nil, m.Ciphertext)
		if err != nil {
			t.Fatalf("message %d: ReadMessage: %v", i, err)
		}
		if !bytes.Equal(pt, m.Payload) {
			t.Fatalf("message %d payload:\n got %x\nwant %x", i, pt, m.Payload)
		}
		if i == 0 {
			got, ok := resp.PeerStatic()
			if !ok || got != iniCfg.Static.PublicKey() {
				t.Fatalf("responder PeerStatic = %x, %v; want the initiator's key", got, ok)
			}
		}
	}
	if !ini.Complete() || !resp.Complete() {
		t.Fatal("handshake not complete after two messages")
	}
	for _, hs := range []*HandshakeState{ini, resp} {
		if h := hs.HandshakeHash(); !bytes.Equal(h, v.HandshakeHash) {
			t.Fatalf("handshake hash (initiator %v):\n got %x\nwant %x", hs.Initiator(), h, v.HandshakeHash)
		}
	}
	iniSend, iniRecv, err := ini.Split()
	if err != nil {
		t.Fatalf("initiator Split: %v", err)
	}
	respSend, respRecv, err := resp.Split()
	if err != nil {
		t.Fatalf("responder Split: %v", err)
	}

	// Transport: alternating, starting initiator -> responder.
	for i, m := range v.Messages[2:] {
		send, recv := iniSend, respRecv
		if i%2 == 1 {
			send, recv = respSend, iniRecv
		}
		n := recv.Nonce()
		ct, err := send.EncryptWithAd(nil, nil, m.Payload)
		if err != nil {
			t.Fatalf("transport %d: encrypt: %v", i, err)
		}
		if !bytes.Equal(ct, m.Ciphertext) {
			t.Fatalf("transport %d ciphertext:\n got %x\nwant %x", i, ct, m.Ciphertext)
		}
		// The explicit-nonce path must agree with the sequential one.
		pt, err := recv.DecryptAt(nil, n, nil, m.Ciphertext)
		if err != nil || !bytes.Equal(pt, m.Payload) {
			t.Fatalf("transport %d: DecryptAt = %x, %v; want %x", i, pt, err, m.Payload)
		}
		pt, err = recv.DecryptWithAd(nil, nil, m.Ciphertext)
		if err != nil {
			t.Fatalf("transport %d: decrypt: %v", i, err)
		}
		if !bytes.Equal(pt, m.Payload) {
			t.Fatalf("transport %d payload:\n got %x\nwant %x", i, pt, m.Payload)
		}
	}
}
