package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/havenproto/haven/wire"
)

func TestGenkeyPubkey(t *testing.T) {
	var priv bytes.Buffer
	if err := run([]string{"genkey"}, nil, &priv); err != nil {
		t.Fatal(err)
	}
	k, err := wire.ParsePrivateKey(priv.String())
	if err != nil {
		t.Fatalf("genkey output %q: %v", priv.String(), err)
	}
	var pub bytes.Buffer
	if err := run([]string{"pubkey"}, strings.NewReader(priv.String()), &pub); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(pub.String()); got != k.PublicKey().String() {
		t.Fatalf("pubkey printed %q, want %q", got, k.PublicKey())
	}
	var again bytes.Buffer
	if err := run([]string{"genkey"}, nil, &again); err != nil || again.String() == priv.String() {
		t.Fatalf("two genkey runs gave the same key (err %v)", err)
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{nil, "", "no command"},
		{[]string{"frobnicate"}, "", `unknown command "frobnicate"`},
		{[]string{"genkey", "x"}, "", "no arguments"},
		{[]string{"pubkey"}, "not a key\n", "invalid private key"},
		{[]string{"pubkey"}, "", "private key"},
		{[]string{"demo"}, "", "demo is not available yet"},
	} {
		err := run(tt.args, strings.NewReader(tt.stdin), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err %v, want %q", tt.args, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "not a key") {
			t.Errorf("error echoes private key input: %v", err)
		}
	}
}
