//go:build !linux

package compat

import (
	"errors"
	"syscall"
)

var errNoCongestion = errors.New("compat: TCP_CONGESTION is Linux's")

// setCongestion does nothing here: the host's choice stays.
func setCongestion(syscall.RawConn, string) error { return errNoCongestion }

// congestionOf is not known here.
func congestionOf(syscall.RawConn) (string, error) { return "", errNoCongestion }
