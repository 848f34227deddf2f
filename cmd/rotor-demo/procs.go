package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one child process of the demo, its output read line by line.
type proc struct {
	name     string
	cmd      *exec.Cmd
	done     chan struct{} // closed once it has exited and its output is read
	stopping atomic.Bool
}

// startProc starts bin with args and calls onLine for each line it writes
// to stdout or stderr, in order. If it exits before stop was called, it is
// sent on exited.
func startProc(name, bin string, args []string, onLine func(string), exited chan<- *proc) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	w.Close() // the child holds its copy; EOF comes when it exits
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.read(r, onLine)
		_ = cmd.Wait()
		close(p.done)
		if !p.stopping.Load() {
			exited <- p
		}
	}()
	return p, nil
}

func (p *proc) read(r io.ReadCloser, onLine func(string)) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		onLine(sc.Text())
	}
}

// stop sends SIGTERM, waits up to grace for a clean exit, then kills. It
// returns the exit code (-1 if killed by a signal).
func (p *proc) stop(grace time.Duration) int {
	p.stopping.Store(true)
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	return p.cmd.ProcessState.ExitCode()
}

// runOnce runs bin to completion and returns its standard output.
func runOnce(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// childEnv is the demo's environment without ROTOR_* variables: every flag
// of the binaries has such a twin, and a ROTOR_STORE or ROTOR_SIGNER left
// in the shell must not change the demo's CA.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROTOR_") {
			env = append(env, kv)
		}
	}
	return env
}
