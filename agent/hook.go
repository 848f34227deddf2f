package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultExecTimeout bounds --exec when no timeout is given.
const DefaultExecTimeout = 30 * time.Second

// hook tells the workload a new certificate is in place: a shell command,
// or a signal to the process named by a PID file, or nothing.
type hook struct {
	command string
	env     []string // the command's environment, before what changed; nil: the agent's
	timeout time.Duration
	signal  syscall.Signal
	pidFile string
}

// maxHookOutput caps what of a command's output is kept for the log.
const maxHookOutput = 4 << 10

// run runs the hook with env added to the agent's environment and returns
// a command's output (capped), which its error carries too, for the log.
func (h hook) run(ctx context.Context, env []string) (string, error) {
	switch {
	case h.command != "":
		return h.exec(ctx, env)
	case h.signal != 0:
		return "", h.kill()
	}
	return "", nil
}

func (h hook) exec(ctx context.Context, env []string) (string, error) {
	timeout := h.timeout
	if timeout == 0 {
		timeout = DefaultExecTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h.command)
	base := h.env
	if base == nil {
		base = os.Environ()
	}
	cmd.Env = append(slices.Clip(base), env...)
	var out bytes.Buffer
	cmd.Stdout = &capped{buf: &out}
	cmd.Stderr = cmd.Stdout
	// Its own process group, so a timeout kills what the shell started too
	// (nginx -s reload behind a wrapper script, say), not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return out.String(), fmt.Errorf("exec hook timed out after %v; output: %q", timeout, out.String())
	}
	if err != nil {
		return out.String(), fmt.Errorf("exec hook: %w; output: %q", err, out.String())
	}
	return out.String(), nil
}

func (h hook) kill() error {
	b, err := os.ReadFile(h.pidFile)
	if err != nil {
		return fmt.Errorf("signal hook: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("signal hook: %s does not hold a process ID", h.pidFile)
	}
	if err := syscall.Kill(pid, h.signal); err != nil {
		return fmt.Errorf("signal hook: send %v to %d: %w", h.signal, pid, err)
	}
	return nil
}

// capped keeps the first maxHookOutput bytes and discards the rest, so a
// chatty command cannot grow the agent.
type capped struct{ buf *bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxHookOutput - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
