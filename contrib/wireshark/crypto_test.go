package wireshark

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// emptyPcap writes a capture with no packets: tshark then only loads its
// scripts, which is how the Lua self-tests run.
func emptyPcap(t *testing.T) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "empty.pcap")
	writePcap(t, name, nil)
	return name
}

// TestLuaCrypto runs the dissector's pure-Lua AEADs inside tshark: the
// known answers of haven_crypto.lua's self-test (FIPS-197 C.3, GCM test
// case 14, RFC 8439 §2.4.2, §2.5.2 and §2.8.2, PROTOCOL.md §9.6 and §9.7), then
// messages of every length from 0 to 70 bytes and a few long ones, sealed
// here by Go's AES-256-GCM and x/crypto's ChaCha20-Poly1305 under random
// keys, nonces and associated data, each of which Lua must open with its
// tag verified, and each with one bit changed, which Lua must refuse.
func TestLuaCrypto(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	var cases strings.Builder
	lengths := []int{100, 1000, 1452, 4099}
	for n := 0; n <= 70; n++ {
		lengths = append(lengths, n)
	}
	count := 0
	for _, n := range lengths {
		for _, cipherName := range []string{"aesgcm", "chacha"} {
			key, nonce, ad, plain := random(32), random(12), random(int(rng.UintN(50))), random(n)
			var aead cipher.AEAD
			if cipherName == "aesgcm" {
				b, _ := aes.NewCipher(key)
				aead, _ = cipher.NewGCM(b)
			} else {
				aead, _ = chacha20poly1305.New(key)
			}
			sealed := aead.Seal(nil, nonce, plain, ad)
			bad := append([]byte(nil), sealed...)
			bit := rng.IntN(len(bad) * 8)
			bad[bit/8] ^= 1 << (bit % 8)
			fmt.Fprintf(&cases, "{%q,%q,%q,%q,%q,%q},\n", cipherName, hex.EncodeToString(key),
				hex.EncodeToString(nonce), hex.EncodeToString(ad), hex.EncodeToString(plain), hex.EncodeToString(sealed))
			fmt.Fprintf(&cases, "{%q,%q,%q,%q,nil,%q},\n", cipherName, hex.EncodeToString(key),
				hex.EncodeToString(nonce), hex.EncodeToString(ad), hex.EncodeToString(bad))
			count += 2
		}
	}
	script := fmt.Sprintf(`
local c = dofile(%q)
local H = c.fromhex
local ok, msg = c.selftest()
print("HAVEN-SELFTEST " .. tostring(ok) .. " " .. msg)
local cases = {
%s}
local good, n = 0, 0
for i, k in ipairs(cases) do
  n = n + 1
  local open = k[1] == "aesgcm" and c.aes256gcm_open or c.chacha20poly1305_open
  local pt, tagok = open(H(k[2]), H(k[3]), H(k[4]), H(k[6]))
  if k[5] then
    if tagok and pt == H(k[5]) then good = good + 1 else print("HAVEN-CASE-FAIL " .. i .. " " .. k[1] .. " " .. #H(k[5])) end
  else
    if not tagok then good = good + 1 else print("HAVEN-CASE-FAIL " .. i .. " " .. k[1] .. " tampered message accepted") end
  end
end
print("HAVEN-CASES " .. good .. "/" .. n)
`, filepath.Join(filepath.Dir(dissectorPath(t)), "haven_crypto.lua"), cases.String())
	name := filepath.Join(t.TempDir(), "crypto_check.lua")
	if err := os.WriteFile(name, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := tsharkPath(t)
	out := runTool(t, bin, "-X", "lua_script:"+name, "-r", emptyPcap(t))
	if !strings.Contains(out, "HAVEN-SELFTEST true 13 known answers") {
		t.Fatalf("Lua crypto self-test failed:\n%s", out)
	}
	if want := fmt.Sprintf("HAVEN-CASES %d/%d", count, count); !strings.Contains(out, want) {
		t.Fatalf("Lua AEADs against Go's: want %q in:\n%s", want, out)
	}
}
