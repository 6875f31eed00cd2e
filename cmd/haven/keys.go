package main

import (
	"fmt"
	"io"
	"os"

	hnet "github.com/havenproto/haven/net"
	"github.com/havenproto/haven/wire"
)

func genkey(w io.Writer) error {
	k, err := wire.GeneratePrivateKey()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, k.Text())
	return err
}

// pubkey reads one private key (surrounding whitespace allowed) from r.
func pubkey(r io.Reader, w io.Writer) error {
	text, err := io.ReadAll(io.LimitReader(r, 1024))
	if err != nil {
		return fmt.Errorf("reading private key: %w", err)
	}
	k, err := wire.ParsePrivateKey(string(text))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, k.PublicKey())
	return err
}

// readKeyFile reads a private key file, refusing one that group or others
// may read or write, as ssh does.
func readKeyFile(path string) (hnet.PrivateKey, error) {
	var zero hnet.PrivateKey
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return zero, fmt.Errorf("key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return zero, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return zero, fmt.Errorf("key file %s has permissions %04o; it must not be accessible by others (chmod 600)", path, perm)
	}
	text, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return zero, fmt.Errorf("key file %s: %w", path, err)
	}
	k, err := hnet.ParsePrivateKey(string(text))
	if err != nil {
		// The parser's message quotes nothing of a private key.
		return zero, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}
