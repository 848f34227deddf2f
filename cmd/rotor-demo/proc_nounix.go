//go:build !unix

package main

import "syscall"

// sysProcAttr: without process groups, Ctrl-C reaches the children too.
func sysProcAttr() *syscall.SysProcAttr { return nil }
