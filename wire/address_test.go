package wire

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
)

const testKey = rfc7748AlicePubText

func TestParseAddress(t *testing.T) {
	key := PublicKey(mustHex32(t, rfc7748AlicePubHex))
	long63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(long63+".", 3) + strings.Repeat("b", 61) // 3*64+61 = 253
	tests := []struct {
		in        string
		host      string
		port      uint16
		canonical string // String(); "" means the input itself
	}{
		{testKey + "@192.0.2.7:51820", "192.0.2.7", 51820, ""},
		{testKey + "@0.0.0.0:1", "0.0.0.0", 1, ""},
		{testKey + "@255.255.255.255:65535", "255.255.255.255", 65535, ""},
		{testKey + "@[2001:db8::7]:51820", "2001:db8::7", 51820, ""},
		{testKey + "@[::1]:80", "::1", 80, ""},
		{testKey + "@[2001:DB8:0:0::7]:443", "2001:db8::7", 443, testKey + "@[2001:db8::7]:443"},
		{testKey + "@[::ffff:192.0.2.1]:9", "::ffff:192.0.2.1", 9, ""},
		{testKey + "@[fe80::1%eth0]:51820", "fe80::1%eth0", 51820, ""},
		{testKey + "@[fe80::1%3]:51820", "fe80::1%3", 51820, ""},
		{testKey + "@[fe80::1%br-lan.100]:1", "fe80::1%br-lan.100", 1, ""},
		{testKey + "@localhost:51820", "localhost", 51820, ""},
		{testKey + "@vpn.example.com:51820", "vpn.example.com", 51820, ""},
		{testKey + "@vpn.example.com.:51820", "vpn.example.com.", 51820, ""},
		{testKey + "@VPN.Example.COM:7", "vpn.example.com", 7, testKey + "@vpn.example.com:7"},
		{testKey + "@a:1", "a", 1, ""},
		{testKey + "@xn--bcher-kva.example:1", "xn--bcher-kva.example", 1, ""},
		{testKey + "@a-b.c-d.e1:1", "a-b.c-d.e1", 1, ""},
		{testKey + "@123.example:1", "123.example", 1, ""},
		{testKey + "@" + long63 + ":1", long63, 1, ""},
		{testKey + "@" + name253 + ":1", name253, 1, ""},
		{testKey + "@" + name253 + ".:1", name253 + ".", 1, ""},
	}
	for _, tt := range tests {
		a, err := ParseAddress(tt.in)
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", tt.in, err)
			continue
		}
		if a.Key != key || a.Host != tt.host || a.Port != tt.port {
			t.Errorf("ParseAddress(%q) = %+v, want host %q port %d", tt.in, a, tt.host, tt.port)
		}
		want := tt.canonical
		if want == "" {
			want = tt.in
		}
		s := a.String()
		if s != want {
			t.Errorf("String() = %q, want %q", s, want)
		}
		if b, err := ParseAddress(s); err != nil || b != a {
			t.Errorf("re-parse of %q = %+v, %v", s, b, err)
		}
		if hp, wantHP := a.HostPort(), s[KeyTextLen+1:]; hp != wantHP {
			t.Errorf("HostPort() = %q, want %q", hp, wantHP)
		}
		h, p, err := net.SplitHostPort(a.HostPort())
		if err != nil || h != a.Host || p != strconv.Itoa(int(a.Port)) {
			t.Errorf("net.SplitHostPort(%q) = %q, %q, %v", a.HostPort(), h, p, err)
		}
		var u Address
		if err := u.UnmarshalText([]byte(tt.in)); err != nil || u != a {
			t.Errorf("UnmarshalText(%q) = %+v, %v", tt.in, u, err)
		}
		if m, _ := a.MarshalText(); string(m) != want {
			t.Errorf("MarshalText = %q", m)
		}
	}
}

func TestParseAddressErrors(t *testing.T) {
	k := testKey
	tests := []struct {
		in, want string
	}{
		// Structure.
		{"", "empty, want <public key>@<host>:<port>"},
		{"vpn.example.com:51820", "missing '@'"},
		{k, "missing '@'"},
		{"@vpn.example.com:51820", "missing public key before '@'"},
		{k + "@", "missing host and port after '@'"},
		{k + "@a@b:1", "more than one '@'"},
		{"x@" + k + "@a:1", "more than one '@'"},
		// Key.
		{"abc@a:1", `invalid public key: 3 characters, want 43 base64url characters`},
		{k + "=@a:1", "invalid public key: padding '='"},
		{" " + k + "@a:1", "invalid public key: invalid character ' ' at offset 0"},
		{k[:42] + "p@a:1", "invalid public key: non-canonical encoding"},
		{strings.Repeat("A", 43) + "@a:1", "invalid public key: all-zero key"},
		// Port.
		{k + "@vpn.example.com", "missing port"},
		{k + "@vpn.example.com:", "missing port"},
		{k + "@192.0.2.1", "missing port"},
		{k + "@[::1]", "missing port"},
		{k + "@[::1]:", "missing port"},
		{k + "@a:0", "port 0 is not allowed"},
		{k + "@a:65536", `port "65536" out of range 1..65535`},
		{k + "@a:99999", "out of range"},
		{k + "@a:123456", "out of range"},
		{k + "@a:99999999999999999999999", "out of range"},
		{k + "@a:+80", `port "+80" has a sign`},
		{k + "@a:-80", `port "-80" has a sign`},
		{k + "@a:http", `port "http" is not a number (service names are not allowed)`},
		{k + "@a:80x", "service names are not allowed"},
		{k + "@a:080", `port "080" has a leading zero`},
		{k + "@a:00", "leading zero"},
		{k + "@a:8 0", `invalid port "8 0"`},
		{k + "@a:80\n", `invalid port "80\n"`},
		{k + "@a:0x50", "service names"},
		// Host.
		{k + "@:80", "missing host"},
		{k + "@[]:80", "missing host: empty brackets"},
		{k + "@::1:80", "IPv6 address must be in brackets"},
		{k + "@2001:db8::1", "IPv6 address must be in brackets"},
		{k + "@fe80::1%eth0:80", "IPv6 address must be in brackets"},
		{k + "@[::1:80", "missing ']'"},
		{k + "@[::1]80", `unexpected "80" after ']'`},
		{k + "@[::1]x:80", `unexpected "x:80" after ']'`},
		{k + "@[192.0.2.1]:80", "brackets are only for IPv6 addresses"},
		{k + "@[vpn.example.com]:80", "invalid IPv6 address"},
		{k + "@[::g]:80", "invalid IPv6 address"},
		{k + "@[fe80::1%]:80", "empty IPv6 zone"},
		{k + "@[fe80::1%eth 0]:80", "invalid character ' ' in IPv6 zone"},
		{k + "@[fe80::1%a%b]:80", "invalid character '%' in IPv6 zone"},
		{k + "@256.1.1.1:80", `invalid IPv4 address "256.1.1.1"`},
		{k + "@192.0.2.01:80", "invalid IPv4 address"},
		{k + "@127.1:80", "invalid IPv4 address"},
		{k + "@2130706433:80", "invalid IPv4 address"},
		{k + "@0x7f.0.0.1:80", `last label "1" is all digits`},
		{k + "@1.2.3.4.5:80", "invalid IPv4 address"},
		{k + "@-a.example:80", `label "-a" starts with '-'`},
		{k + "@a-.example:80", `label "a-" ends with '-'`},
		{k + "@a..b:80", "empty label"},
		{k + "@.a:80", "empty label"},
		{k + "@a..:80", "empty label"},
		{k + "@.:80", "no labels"},
		{k + "@a_b.example:80", `invalid character '_'`},
		{k + "@a b:80", `invalid character ' '`},
		{k + "@bücher.example:80", "non-ASCII character; write an internationalized name in its xn-- form"},
		{k + "@a/b:80", `invalid character '/'`},
		{k + "@" + strings.Repeat("a", 64) + ":80", "label of 64 characters, at most 63"},
		{k + "@" + strings.Repeat(strings.Repeat("a", 63)+".", 4) + "b:80", "257 characters, at most 253"},
		{k + "@" + strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 62) + ":80", "254 characters, at most 253"},
	}
	for _, tt := range tests {
		a, err := ParseAddress(tt.in)
		if err == nil {
			t.Errorf("ParseAddress(%q) = %+v, want error containing %q", tt.in, a, tt.want)
			continue
		}
		if a != (Address{}) {
			t.Errorf("ParseAddress(%q) returned %+v with an error", tt.in, a)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseAddress(%q) error:\n  %v\nwant it to contain %q", tt.in, err, tt.want)
		}
		var ae *AddressError
		if !errors.As(err, &ae) || ae.Input != tt.in {
			t.Errorf("ParseAddress(%q) error %#v is not an *AddressError with the input", tt.in, err)
			continue
		}
		if want := `wire: address "`; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q lacks prefix %q", err, want)
		}
		var ke *KeyError
		isKey := strings.Contains(tt.want, "invalid public key")
		if errors.As(err, &ke) != isKey {
			t.Errorf("ParseAddress(%q): errors.As *KeyError = %v, want %v", tt.in, !isKey, isKey)
		}
	}
}

func TestAddressErrorFormat(t *testing.T) {
	_, err := ParseAddress("x")
	if got, want := err.Error(), `wire: address "x": missing '@' after the public key, want <public key>@<host>:<port>`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = ParseAddress(testKey + "@x")
	if got, want := err.Error(), `wire: address "`+testKey+`@x": missing port`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = ParseAddress("abc@x:1")
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Input != "abc" || ke.Kind != "public key" {
		t.Errorf("key error %#v", ke)
	}
}

func TestAddressHostPort(t *testing.T) {
	key := PublicKey(mustHex32(t, rfc7748AlicePubHex))
	tests := []struct {
		a    Address
		want string
	}{
		{Address{key, "192.0.2.1", 1}, "192.0.2.1:1"},
		{Address{key, "2001:db8::1", 65535}, "[2001:db8::1]:65535"},
		{Address{key, "fe80::1%eth0", 80}, "[fe80::1%eth0]:80"},
		{Address{key, "example.com", 51820}, "example.com:51820"},
	}
	for _, tt := range tests {
		if got := tt.a.HostPort(); got != tt.want {
			t.Errorf("HostPort() = %q, want %q", got, tt.want)
		}
		if got := tt.a.HostPort(); got != net.JoinHostPort(tt.a.Host, strconv.Itoa(int(tt.a.Port))) {
			t.Errorf("HostPort() = %q differs from net.JoinHostPort", got)
		}
		if got := tt.a.String(); got != testKey+"@"+tt.want {
			t.Errorf("String() = %q", got)
		}
	}
}

// FuzzParseAddress checks that the parser never panics and that every
// accepted address prints in a form that parses back to the same Address
// and prints identically.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		testKey + "@192.0.2.7:51820",
		testKey + "@[2001:db8::7]:51820",
		testKey + "@[fe80::1%eth0]:1",
		testKey + "@VPN.example.com.:65535",
		testKey + "@::1:80",
		"@a:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			var ae *AddressError
			if !errors.As(err, &ae) || ae.Input != s {
				t.Fatalf("error %v is not an *AddressError for the input", err)
			}
			if a != (Address{}) {
				t.Fatalf("error with non-zero result %+v", a)
			}
			return
		}
		if a.Key.IsZero() || a.Host == "" || a.Port == 0 {
			t.Fatalf("accepted %q as incomplete %+v", s, a)
		}
		text := a.String()
		b, err := ParseAddress(text)
		if err != nil {
			t.Fatalf("%q parsed as %+v, but its String %q does not: %v", s, a, text, err)
		}
		if b != a {
			t.Fatalf("%q -> %+v -> %q -> %+v", s, a, text, b)
		}
		if b.String() != text {
			t.Fatalf("String not stable: %q then %q", text, b.String())
		}
		if _, _, err := net.SplitHostPort(a.HostPort()); err != nil {
			t.Fatalf("HostPort %q does not split: %v", a.HostPort(), err)
		}
	})
}
