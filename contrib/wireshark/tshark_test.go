package wireshark

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tshark runs tshark with the dissector on a capture and returns its
// standard output. Extra arguments come before -r. The environment is the
// test's without HAVEN_KEYLOGFILE, so that only the arguments decide the
// key log.
func tshark(t *testing.T, capture string, args ...string) []byte {
	t.Helper()
	return tsharkEnv(t, "", capture, args...)
}

// tsharkEnv is tshark with HAVEN_KEYLOGFILE set to keylog in tshark's
// environment (unset if keylog is empty).
func tsharkEnv(t *testing.T, keylog, capture string, args ...string) []byte {
	t.Helper()
	bin := tsharkPath(t)
	full := append([]string{
		"-n", // no name resolution
		"-X", "lua_script:" + dissectorPath(t),
		"-o", "udp.try_heuristic_first:TRUE",
		"-o", "tcp.try_heuristic_first:TRUE",
	}, args...)
	full = append(full, "-r", capture)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, full...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HAVEN_KEYLOGFILE=") {
			env = append(env, kv)
		}
	}
	if keylog != "" {
		env = append(env, "HAVEN_KEYLOGFILE="+keylog)
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(full, " "), err, stderr.String())
	}
	// tshark prints Lua errors on stderr and goes on; any is a failure.
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "Lua") || strings.Contains(l, "lua") || strings.Contains(l, "rror") {
			t.Fatalf("tshark stderr: %s\n%s", l, stderr.String())
		}
	}
	// A Lua error while dissecting shows in the packet tree, not on stderr.
	if i := bytes.Index(stdout.Bytes(), []byte("Lua Error")); i >= 0 {
		t.Fatalf("tshark output has a Lua error: %.300s", stdout.Bytes()[i:])
	}
	return stdout.Bytes()
}

// tsharkPath finds tshark. Without it the test fails in CI (CI=true:
// .ci/run installs it) and is skipped elsewhere.
func tsharkPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is not installed; .ci/run installs it (apt-get install tshark)")
		}
		t.Skip("tshark not found: install Wireshark's tshark to run the dissector's tests")
	}
	return p
}

// dissectorPath returns the absolute path of haven.lua, beside this file.
func dissectorPath(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "haven.lua")
}

// PDML, tshark's XML of the packet tree (-T pdml).
type pdmlNode struct {
	Name   string     `xml:"name,attr"`
	Show   string     `xml:"show,attr"`
	Value  string     `xml:"value,attr"`
	Fields []pdmlNode `xml:"field"`
	Protos []pdmlNode `xml:"proto"`
}

type pdmlPacket struct {
	Protos []pdmlNode `xml:"proto"`
}

// pdml runs tshark -T pdml and returns each frame's Haven packets (the
// "haven" protocol trees, several in a TCP segment, none in a segment that
// only continues one).
func pdml(t *testing.T, capture string, args ...string) [][]pdmlNode {
	t.Helper()
	return pdmlEnv(t, "", capture, args...)
}

// pdmlEnv is pdml with HAVEN_KEYLOGFILE (tsharkEnv).
func pdmlEnv(t *testing.T, keylog, capture string, args ...string) [][]pdmlNode {
	t.Helper()
	out := tsharkEnv(t, keylog, capture, append(args, "-T", "pdml")...)
	var doc struct {
		Packets []pdmlPacket `xml:"packet"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("tshark PDML: %v", err)
	}
	frames := make([][]pdmlNode, len(doc.Packets))
	for i, p := range doc.Packets {
		for _, pr := range p.Protos {
			if pr.Name == "haven" {
				frames[i] = append(frames[i], pr)
			}
		}
	}
	return frames
}

// field returns the first field named name anywhere under n.
func (n *pdmlNode) field(name string) *pdmlNode {
	for i := range n.Fields {
		f := &n.Fields[i]
		if f.Name == name {
			return f
		}
		if g := f.field(name); g != nil {
			return g
		}
	}
	return nil
}

// show returns the show attribute of field name, or "" if absent.
func (n *pdmlNode) show(name string) string {
	if f := n.field(name); f != nil {
		return f.Show
	}
	return ""
}

// messages returns the haven.msg trees directly under n, in order.
func (n *pdmlNode) messages() []*pdmlNode {
	var out []*pdmlNode
	for i := range n.Fields {
		if n.Fields[i].Name == "haven.msg" {
			out = append(out, &n.Fields[i])
		}
	}
	return out
}

// runTool runs a program and returns its standard output and error
// together; it fails the test if the program fails.
func runTool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}
