package main

import "syscall"

// sysProcAttr puts a child in its own process group, so the terminal's
// Ctrl-C reaches only the demo, which then stops the children in order
// (webapp before api, services before agents, agents before the CA) and
// the last requests do not fail for want of a peer. Pdeathsig stops a child
// if the demo itself dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
