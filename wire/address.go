package wire

import (
	"net/netip"
	"strconv"
	"strings"
)

// Address is a peer's address: its static public key and where to reach it,
// written "<public key>@<host>:<port>", e.g.
//
//	hJ2bRq...43 characters...@vpn.example.com:51820
//	hJ2bRq...43 characters...@192.0.2.7:51820
//	hJ2bRq...43 characters...@[2001:db8::7]:51820
//	hJ2bRq...43 characters...@[fe80::1%eth0]:51820
//
// Grammar (docs/PROTOCOL.md):
//
//	address  = key "@" host ":" port
//	key      = 43 base64url characters (see PublicKey); base64url has no '@'
//	host     = IPv4 / "[" IPv6 [ "%" zone ] "]" / hostname
//	zone     = 1*( ALPHA / DIGIT / "." / "_" / "-" )
//	hostname = label *( "." label ) [ "." ]   ; RFC 1123, at most 253
//	                                         ; characters without the dot
//	label    = 1..63 of ALPHA / DIGIT / "-", not starting or ending in "-";
//	           the last label is not all digits (so "1.2.3.999" is neither)
//	port     = 1..65535 in decimal, no sign, no leading zero
//
// ParseAddress stores the host canonically: IP literals in netip's form
// (IPv6 lowercase and compressed, no brackets), host names in lowercase.
type Address struct {
	Key PublicKey
	// Host is an IPv4 literal, an IPv6 literal without brackets (possibly
	// with a "%zone"), or a host name.
	Host string
	Port uint16
}

// AddressError reports an address text that ParseAddress rejected, like
// net.AddrError: `wire: address "x": missing port`.
type AddressError struct {
	Input  string // the rejected text
	Reason string // what is wrong with it
	Err    error  // the underlying *KeyError for a bad key, else nil
}

func (e *AddressError) Error() string {
	return "wire: address " + strconv.Quote(e.Input) + ": " + e.Reason
}

// Unwrap returns the underlying *KeyError, if any.
func (e *AddressError) Unwrap() error { return e.Err }

// ParseAddress parses "<public key>@<host>:<port>" (see Address). The text
// must be exact: surrounding whitespace is an error. Errors are
// *AddressError.
func ParseAddress(s string) (Address, error) {
	var a Address
	fail := func(reason string) (Address, error) {
		return Address{}, &AddressError{Input: s, Reason: reason}
	}
	if s == "" {
		return fail("empty, want <public key>@<host>:<port>")
	}
	at := strings.IndexByte(s, '@')
	switch {
	case at < 0:
		return fail("missing '@' after the public key, want <public key>@<host>:<port>")
	case at == 0:
		return fail("missing public key before '@'")
	}
	rest := s[at+1:]
	if strings.IndexByte(rest, '@') >= 0 {
		return fail("more than one '@'")
	}
	if reason := parsePublicKeyExact(s[:at], &a.Key); reason != "" {
		return Address{}, &AddressError{
			Input:  s,
			Reason: "invalid public key: " + reason,
			Err:    &KeyError{Kind: kindPublic, Input: s[:at], Reason: reason},
		}
	}
	if rest == "" {
		return fail("missing host and port after '@'")
	}

	var host, port string
	if rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return fail("missing ']' after IPv6 address")
		}
		host = rest[1:end]
		after := rest[end+1:]
		switch {
		case after == "" || after == ":":
			return fail("missing port")
		case after[0] != ':':
			return fail("unexpected " + strconv.Quote(after) + " after ']', want :<port>")
		}
		port = after[1:]
		h, reason := parseBracketedHost(host)
		if reason != "" {
			return fail(reason)
		}
		a.Host = h
	} else {
		colon := strings.LastIndexByte(rest, ':')
		if colon < 0 {
			return fail("missing port")
		}
		host, port = rest[:colon], rest[colon+1:]
		if strings.IndexByte(host, ':') >= 0 {
			return fail("IPv6 address must be in brackets, as in <key>@[2001:db8::1]:51820")
		}
		if host == "" {
			return fail("missing host")
		}
		h, reason := parsePlainHost(host)
		if reason != "" {
			return fail(reason)
		}
		a.Host = h
	}
	if port == "" {
		return fail("missing port")
	}
	p, reason := parsePort(port)
	if reason != "" {
		return fail(reason)
	}
	a.Port = p
	return a, nil
}

// parseBracketedHost checks the text between '[' and ']': an IPv6 literal
// with an optional zone. It returns the canonical host or a reason.
func parseBracketedHost(host string) (string, string) {
	if host == "" {
		return "", "missing host: empty brackets"
	}
	addrText, zone, hasZone := strings.Cut(host, "%")
	if hasZone {
		if zone == "" {
			return "", "empty IPv6 zone after '%'"
		}
		for i := 0; i < len(zone); i++ {
			if c := zone[i]; !isZoneChar(c) {
				return "", "invalid character " + quoteByte(c) + " in IPv6 zone " + strconv.Quote(zone)
			}
		}
	}
	ip, err := netip.ParseAddr(addrText)
	if err != nil {
		return "", "invalid IPv6 address " + strconv.Quote(host)
	}
	if ip.Is4() {
		return "", "brackets are only for IPv6 addresses; write IPv4 address " + addrText + " without them"
	}
	if hasZone {
		ip = ip.WithZone(zone)
	}
	return ip.String(), ""
}

// isZoneChar reports whether c may appear in an IPv6 zone: interface names
// and numeric zone indexes use only these.
func isZoneChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// parsePlainHost checks an unbracketed host: an IPv4 literal or a host name.
// It returns the canonical host or a reason.
func parsePlainHost(host string) (string, string) {
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		// netip accepts only the dotted-quad form with no leading zeros, so
		// the input is already canonical.
		return host, ""
	}
	if reason := checkHostName(host); reason != "" {
		return "", reason
	}
	return toLowerASCII(host), ""
}

// maxHostNameLen is the longest host name, without a trailing dot
// (RFC 1035 §2.3.4 as applied to the text form).
const maxHostNameLen = 253

// checkHostName returns "" if name is an RFC 1123 host name with an
// optional trailing dot, else the reason it is not.
func checkHostName(host string) string {
	bad := func(why string) string {
		return "invalid host name " + strconv.Quote(host) + ": " + why
	}
	name := strings.TrimSuffix(host, ".")
	if name == "" {
		return bad("no labels")
	}
	if len(name) > maxHostNameLen {
		return bad(strconv.Itoa(len(name)) + " characters, at most 253")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.':
		case c >= 0x80:
			return bad("non-ASCII character; write an internationalized name in its xn-- form")
		default:
			return bad("invalid character " + quoteByte(c) + ", want letters, digits, '-' and '.'")
		}
	}
	var last string
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return bad("empty label")
		case len(label) > 63:
			return bad("label of " + strconv.Itoa(len(label)) + " characters, at most 63")
		case label[0] == '-':
			return bad("label " + strconv.Quote(label) + " starts with '-'")
		case label[len(label)-1] == '-':
			return bad("label " + strconv.Quote(label) + " ends with '-'")
		}
		last = label
	}
	if allDigits(last) {
		// Resolvers may read such names as numeric addresses in forms
		// netip rejects (octal, "127.1", a bare integer): refuse them.
		if allDigitsAndDots(name) {
			return "invalid IPv4 address " + strconv.Quote(host) + ", want four decimal octets 0..255 without leading zeros"
		}
		return bad("last label " + strconv.Quote(last) + " is all digits")
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func allDigitsAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// toLowerASCII lowercases an ASCII string, returning s itself when it has no
// upper-case letters.
func toLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// parsePort parses a port: decimal 1..65535, no sign, no leading zero. It
// returns the port or a reason.
func parsePort(s string) (uint16, string) {
	q := strconv.Quote(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if '0' <= c && c <= '9' {
			continue
		}
		switch {
		case i == 0 && (c == '+' || c == '-'):
			return 0, "port " + q + " has a sign, want a decimal number 1..65535"
		case 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z':
			return 0, "port " + q + " is not a number (service names are not allowed), want 1..65535"
		default:
			return 0, "invalid port " + q + ", want a decimal number 1..65535"
		}
	}
	if s == "0" {
		return 0, "port 0 is not allowed, want 1..65535"
	}
	if s[0] == '0' {
		return 0, "port " + q + " has a leading zero"
	}
	if len(s) > 5 {
		return 0, "port " + q + " out of range 1..65535"
	}
	n, _ := strconv.Atoi(s) // at most 5 digits: cannot fail
	if n > 65535 {
		return 0, "port " + q + " out of range 1..65535"
	}
	return uint16(n), ""
}

// HostPort returns "host:port", with an IPv6 host in brackets, as
// net.JoinHostPort does; it is what a dialer or resolver takes.
func (a Address) HostPort() string {
	p := strconv.FormatUint(uint64(a.Port), 10)
	if strings.IndexByte(a.Host, ':') >= 0 {
		return "[" + a.Host + "]:" + p
	}
	return a.Host + ":" + p
}

// String returns the canonical text form "<public key>@<host>:<port>", with
// an IPv6 host in brackets. For an address from ParseAddress it parses back
// to the same Address.
func (a Address) String() string { return a.Key.String() + "@" + a.HostPort() }

// MarshalText returns the address's text form (encoding.TextMarshaler).
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText parses an address as ParseAddress does
// (encoding.TextUnmarshaler).
func (a *Address) UnmarshalText(text []byte) error {
	addr, err := ParseAddress(string(text))
	if err != nil {
		return err
	}
	*a = addr
	return nil
}
