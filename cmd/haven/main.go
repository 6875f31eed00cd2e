// Command haven is Haven's command-line tool. This version has the key
// commands, in the manner of wg(8):
//
//	haven genkey            # a new private key, as text, to stdout
//	haven pubkey < key      # the public key of the private key on stdin
//
// serve, cat, forward, bench and demo arrive with the session and socket
// layers (issues #5 and #6).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/havenproto/haven/wire"
)

const usage = `usage: haven <command> [arguments]

commands:
  genkey   write a new private key to stdout
  pubkey   read a private key on stdin, write its public key to stdout
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "haven:", err)
		os.Exit(1)
	}
}

// errUsage is returned for a command line haven does not understand.
var errUsage = errors.New("usage")

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("no command given\n%s", usage)
	}
	switch args[0] {
	case "genkey":
		if len(args) != 1 {
			return errors.New("genkey takes no arguments")
		}
		return genkey(stdout)
	case "pubkey":
		if len(args) != 1 {
			return errors.New("pubkey takes no arguments; it reads the private key on stdin")
		}
		return pubkey(stdin, stdout)
	case "serve", "cat", "forward", "bench", "demo":
		return fmt.Errorf("%s is not available yet: it needs the session and socket layers (issues #5 and #6)", args[0])
	case "-h", "-help", "--help", "help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

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
