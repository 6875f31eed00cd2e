// Command haven is Haven's command-line tool: keys in the manner of wg(8),
// a socket-activated server, nc- and ssh -L-style clients, a benchmark and
// a self-contained demo.
//
//	haven genkey                     # a new private key, as text, to stdout
//	haven pubkey < key               # the public key of the private key on stdin
//	haven serve -key FILE [-listen ADDR] [-authorized-keys FILE] (-echo | -discard | -forward HOST:PORT)
//	haven cat [-key FILE] [-service NAME] ADDR   # stdin -> a new channel -> stdout
//	haven forward -L [BINDHOST:]PORT [-key FILE] ADDR
//	haven bench [-key FILE] [-n BYTES] [-c CHANNELS] [-d DURATION] [-datagrams] ADDR
//	haven demo [-tcp] [-scale F]     # an in-process server and client, and a table
//
// With HAVEN_CPUPROFILE=FILE in the environment, a command writes a CPU
// profile of its whole run to FILE (for go tool pprof), as when profiling
// haven forward and haven serve -forward under iperf3.
// ADDR is "<public key>@<host>:<port>", as a server logs it. Errors are one
// line on stderr starting "haven:". The exit status is 0 on success, 1 on
// an error and 2 on a command line haven does not understand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/havenproto/haven/wire"
)

// defaultPort is the UDP port haven serve binds without socket activation
// (and the one contrib/systemd/haven.socket listens on).
const defaultPort = "4433"

const usage = `usage: haven <command> [flags] [arguments]

commands:
  genkey    write a new private key to stdout
  pubkey    read a private key on stdin, write its public key to stdout
  serve     serve echo, discard or TCP forwarding on UDP port ` + defaultPort + `
            (or on the sockets systemd passes)
  cat       copy stdin to a new channel and the channel to stdout (like nc)
  forward   forward a local TCP port through a channel (like ssh -L)
  show      list a running server's sessions (its -control socket)
  bench     measure throughput and round-trip time against a server
  demo      run a server and a client in this process, and show what crossed

ADDR is "<public key>@<host>:<port>", as haven serve logs it.
Run "haven <command> -h" for a command's flags.
`

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a command line haven does not understand (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp reports that help was asked for and printed: exit status 0.
var errHelp = errors.New("help printed")

// errNoCommand is haven with no arguments: the usage goes to stderr.
var errNoCommand = &usageError{msg: "no command given"}

// stdio is a command's standard streams.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func main() {
	stop := startProfile(os.Getenv("HAVEN_CPUPROFILE"), os.Stderr)
	err := runWith(context.Background(), os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr})
	stop()
	os.Exit(report(err, os.Stderr))
}

// report prints err as haven's one-line error (or the usage, for a bare
// "haven") and returns the exit status.
func report(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case err == errNoCommand:
		io.WriteString(stderr, usage)
		return exitUsage
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "haven:", oneLine(err.Error()))
		return exitUsage
	}
	fmt.Fprintln(stderr, "haven:", oneLine(err.Error()))
	return exitError
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// run is runWith without a context, with stderr discarded (for tests of
// the simple commands).
func run(args []string, stdin io.Reader, stdout io.Writer) error {
	return runWith(context.Background(), args, stdio{stdin, stdout, io.Discard})
}

func runWith(ctx context.Context, args []string, std stdio) error {
	if len(args) == 0 {
		return errNoCommand
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "genkey":
		if len(rest) != 0 {
			return usagef("genkey takes no arguments")
		}
		return genkey(std.out)
	case "pubkey":
		if len(rest) != 0 {
			return usagef("pubkey takes no arguments; it reads the private key on stdin")
		}
		return pubkey(std.in, std.out)
	case "serve":
		return cmdServe(ctx, rest, std)
	case "cat":
		return cmdCat(ctx, rest, std)
	case "forward":
		return cmdForward(ctx, rest, std)
	case "show":
		return cmdShow(ctx, rest, std)
	case "bench":
		return cmdBench(ctx, rest, std)
	case "demo":
		return cmdDemo(ctx, rest, std)
	case "-h", "-help", "--help", "help":
		if _, err := io.WriteString(std.out, usage); err != nil {
			return err
		}
		return errHelp
	}
	return usagef("unknown command %q; run \"haven -h\" for the list", cmd)
}

// command is one subcommand's flag set, with its synopsis for -h.
type command struct {
	*flag.FlagSet
	synopsis string // "serve -key FILE [-listen ADDR] ..."
	about    string // a paragraph after the synopsis
}

func newCommand(name, synopsis, about string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{FlagSet: fs, synopsis: synopsis, about: about}
}

// parse parses args; -h prints the command's usage to stdout and returns
// errHelp. want is how many positional arguments the command takes (-1:
// any number, the command checks).
func (c *command) parse(args []string, want int, stdout io.Writer) error {
	err := c.Parse(addressEndsFlags(args))
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "usage: haven %s\n\n%s\nflags:\n", c.synopsis, c.about)
		c.SetOutput(stdout)
		c.PrintDefaults()
		return errHelp
	}
	if err != nil {
		return usagef("%s: %v; run \"haven %s -h\"", c.Name(), err, c.Name())
	}
	if want >= 0 && c.NArg() != want {
		return usagef("usage: haven %s", c.synopsis)
	}
	return nil
}

// isSet reports whether the flag was given on the command line.
func (c *command) isSet(name string) bool {
	set := false
	c.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// addressEndsFlags inserts "--" before the first argument that is a Haven
// address starting with '-' (one public key in 64 does: base64url has
// '-'), so that the flag package takes it as the positional ADDR, not as
// an unknown flag.
func addressEndsFlags(args []string) []string {
	for i, a := range args {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			if _, err := wire.ParseAddress(a); err == nil {
				return append(append(args[:i:i], "--"), args[i:]...)
			}
		}
	}
	return args
}

// startProfile starts a CPU profile into path (none when path is empty) and
// returns what stops it; a profile that cannot start is reported and
// skipped, not fatal.
func startProfile(path string, log io.Writer) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(log, "haven: HAVEN_CPUPROFILE: %v\n", err)
		if f != nil {
			f.Close()
		}
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
