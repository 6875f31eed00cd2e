package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	hnet "github.com/havenproto/haven/net"
	"github.com/havenproto/haven/wire"
)

// maxAuthorizedKeysFile bounds what serve reads of an authorized keys
// file: about 20,000 keys with comments.
const maxAuthorizedKeysFile = 1 << 20

// keySet is the set of public keys an authorized keys file lists.
type keySet map[hnet.PublicKey]struct{}

// parseAuthorizedKeys reads an authorized keys file, named name in errors:
// one public key per line in the text form haven pubkey prints, optionally
// followed by a comment starting with '#'; blank lines and lines starting
// with '#' are skipped, and surrounding whitespace is ignored. The first
// malformed line is an error naming the file and the line.
func parseAuthorizedKeys(r io.Reader, name string) (keySet, error) {
	keys := keySet{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		field, _, _ := strings.Cut(line, "#") // the rest is a comment
		field = strings.TrimSpace(field)
		if strings.ContainsAny(field, " \t") {
			return nil, fmt.Errorf("authorized keys %s, line %d: want one public key per line, then nothing but a # comment", name, n)
		}
		k, err := hnet.ParsePublicKey(field)
		if err != nil {
			var ke *wire.KeyError
			if errors.As(err, &ke) {
				return nil, fmt.Errorf("authorized keys %s, line %d: %q is not a public key: %s", name, n, clip(field, 50), ke.Reason)
			}
			return nil, fmt.Errorf("authorized keys %s, line %d: %w", name, n, err)
		}
		keys[k] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("authorized keys %s: a line longer than 64 KiB", name)
		}
		return nil, fmt.Errorf("authorized keys %s: %w", name, err)
	}
	return keys, nil
}

// readAuthorizedKeys reads and parses the authorized keys file at path. As
// sshd does, it refuses a file that group or others may write: whoever can
// write it can let any key in.
func readAuthorizedKeys(path string) (keySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("authorized keys: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("authorized keys: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("authorized keys %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("authorized keys %s has permissions %04o; it must not be writable by others (chmod go-w)", path, perm)
	}
	if fi.Size() > maxAuthorizedKeysFile {
		return nil, fmt.Errorf("authorized keys %s is larger than %d bytes", path, maxAuthorizedKeysFile)
	}
	return parseAuthorizedKeys(io.LimitReader(f, maxAuthorizedKeysFile), path)
}

// authorizer is serve's Config.Authorize: the keys of an authorized keys
// file, replaced as a whole when the file is read again (SIGHUP).
type authorizer struct {
	path string
	// keys is read by every handshake, on the Hosts' reader goroutines,
	// while a reload may replace it: an atomic pointer, so handshakes take
	// no lock and see either the old set or the new one.
	keys atomic.Pointer[keySet]
}

// newAuthorizer reads the file at path.
func newAuthorizer(path string) (*authorizer, error) {
	a := &authorizer{path: path}
	if _, err := a.reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// allows reports whether k is listed (hnet.Config.Authorize).
func (a *authorizer) allows(k hnet.PublicKey) bool {
	_, ok := (*a.keys.Load())[k]
	return ok
}

// reload reads the file again and, if it parses, puts its keys in force
// and returns their number; otherwise the keys in force stay.
func (a *authorizer) reload() (int, error) {
	keys, err := readAuthorizedKeys(a.path)
	if err != nil {
		return 0, err
	}
	a.keys.Store(&keys)
	return len(keys), nil
}

// count returns the number of keys in force.
func (a *authorizer) count() int { return len(*a.keys.Load()) }

// clientConfig returns the Config of a client command: with a key file
// (-key), that identity, which a server's authorized keys can list;
// without, a fresh identity per run; and the -cipher flag's choice.
func clientConfig(keyPath string, cipher hnet.Cipher) (hnet.Config, error) {
	if keyPath == "" {
		return hnet.Config{Cipher: cipher}, nil
	}
	k, err := readKeyFile(keyPath)
	if err != nil {
		return hnet.Config{}, err
	}
	return hnet.Config{PrivateKey: k, Cipher: cipher}, nil
}

// cipherFlag defines a client command's -cipher flag.
func cipherFlag(c *command) *hnet.Cipher {
	v := new(hnet.Cipher)
	c.TextVar(v, "cipher", hnet.CipherAuto,
		"the session's AEAD: auto (AES-256-GCM on CPUs with AES instructions, else ChaCha20-Poly1305), chacha20-poly1305 or aes-256-gcm; servers accept both")
	return v
}

// clip shortens s to at most n bytes for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
