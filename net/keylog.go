package net

import (
	"os"
	"sync"

	"github.com/havenproto/haven/internal/secure"
)

// KeyLogEnv is the environment variable that, set to a file name, makes
// every session of a Config without KeyLog append its transport keys to
// that file (created with mode 0600), like SSLKEYLOGFILE for TLS
// (docs/KEYLOG.md). The keys let anyone who reads the file decrypt and
// forge the sessions' packets: set it only to debug.
const KeyLogEnv = "HAVEN_KEYLOGFILE"

// keyLogFiles holds the files opened for KeyLogEnv, by name: one per
// process and name, shared by its endpoints, open until the process ends.
var keyLogFiles struct {
	sync.Mutex
	m map[string]*secure.KeyLog
}

// keyLog returns the key log of c's sessions: Config.KeyLog, or the file
// $HAVEN_KEYLOGFILE names, or nil (the default: no key log).
func (c *Config) keyLog() *secure.KeyLog {
	if c.KeyLog != nil {
		return secure.NewKeyLog(c.KeyLog)
	}
	name := os.Getenv(KeyLogEnv)
	if name == "" {
		return nil
	}
	keyLogFiles.Lock()
	defer keyLogFiles.Unlock()
	if l, ok := keyLogFiles.m[name]; ok {
		return l
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil // no key log rather than no session, as for traces
	}
	if keyLogFiles.m == nil {
		keyLogFiles.m = map[string]*secure.KeyLog{}
	}
	l := secure.NewKeyLog(f)
	keyLogFiles.m[name] = l
	return l
}
