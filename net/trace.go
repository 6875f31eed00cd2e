package net

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/havenproto/haven/internal/endpoint"
)

// TraceInfo describes a session whose trace begins (Config.Trace).
type TraceInfo struct {
	Peer   PublicKey // the peer's static key
	Dialed bool      // this side dialed the session
	Start  time.Time
}

// TraceEnv is the environment variable that, set to a directory, makes
// every session of a Config without Trace write its trace there, one file
// per session named by the peer's key, the time and the side
// (docs/TRACE.md).
const TraceEnv = "HAVEN_TRACE"

// traceFactory returns the endpoint's trace factory: Config.Trace, or
// files in $HAVEN_TRACE, or nil.
func (c *Config) traceFactory() func(endpoint.TraceInfo) io.Writer {
	if c.Trace != nil {
		f := c.Trace
		return func(i endpoint.TraceInfo) io.Writer {
			return f(TraceInfo{Peer: PublicKey(i.Peer), Dialed: i.Initiator, Start: i.Start})
		}
	}
	dir := os.Getenv(TraceEnv)
	if dir == "" {
		return nil
	}
	return func(i endpoint.TraceInfo) io.Writer {
		side := "server"
		if i.Initiator {
			side = "client"
		}
		name := fmt.Sprintf("%s-%s-%s.jsonl", PublicKey(i.Peer).String()[:16], i.Start.UTC().Format("20060102T150405.000000"), side)
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil // no trace rather than no session
		}
		return f
	}
}
