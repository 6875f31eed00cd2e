//go:build !linux

package main

import "syscall"

const haveRawIO = false

func rawRead(uintptr, []byte) (int, syscall.Errno, bool)  { panic("unreachable") }
func rawWrite(uintptr, []byte) (int, syscall.Errno, bool) { panic("unreachable") }
