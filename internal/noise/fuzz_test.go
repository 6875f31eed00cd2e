package noise

import (
	"bytes"
	"testing"
)

// FuzzReadMessage feeds arbitrary bytes as message 1 to a responder and as
// message 2 to an initiator (Haven's suite, the vector's keys). Neither
// may panic, anything accepted must be the genuine message, and a rejected
// message must leave the state able to accept the genuine one.
func FuzzReadMessage(f *testing.F) {
	v := findVector(f, havenVector)
	iniCfg, respCfg := vectorConfigs(f, v)
	msg1, msg2 := []byte(v.Messages[0].Ciphertext), []byte(v.Messages[1].Ciphertext)

	// Templates, copied per input so that each starts from the same state.
	respTmpl, err := NewResponder(respCfg)
	if err != nil {
		f.Fatal(err)
	}
	iniTmpl, err := NewInitiator(iniCfg)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := iniTmpl.WriteMessage(nil, v.Messages[0].Payload); err != nil {
		f.Fatal(err)
	}

	// More seeds, genuine and damaged messages, are in
	// testdata/fuzz/FuzzReadMessage.
	f.Add(make([]byte, 96))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []struct {
			tmpl    *HandshakeState
			genuine []byte
		}{{respTmpl, msg1}, {iniTmpl, msg2}} {
			hs := *c.tmpl
			out, err := hs.ReadMessage(nil, data)
			if err == nil {
				if !bytes.Equal(data, c.genuine) {
					t.Fatalf("forged message accepted: %x", data)
				}
				_ = out
				continue
			}
			if _, err := hs.ReadMessage(nil, c.genuine); err != nil {
				t.Fatalf("genuine message refused after rejecting %x: %v", data, err)
			}
		}
	})
}
