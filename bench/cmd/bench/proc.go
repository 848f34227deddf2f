package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor"
)

// proc is a server the harness started, its output in a log file.
type proc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// start runs bin with args (and env added), output appended to logPath.
func start(logPath string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.exited) }()
	return p, nil
}

// pid is the process's ID, for /proc.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// servingAddr waits for the rotor.EventServing line and returns its addr.
func (p *proc) servingAddr(limit time.Duration) (string, error) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		if addr := p.event(rotor.EventServing)["addr"]; addr != nil {
			return fmt.Sprint(addr), nil
		}
		select {
		case <-p.exited:
			return "", fmt.Errorf("%s exited before serving; see %s", p.cmd.Path, p.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("%s did not serve within %s; see %s", p.cmd.Path, limit, p.log)
}

// event is the first JSON log line whose rotor.LogEvent is name, or nil.
func (p *proc) event(name string) map[string]any {
	if evs := p.events(name); len(evs) > 0 {
		return evs[0]
	}
	return nil
}

// events are the JSON log lines whose rotor.LogEvent is name, oldest
// first: programs learn what a process did from its events, never from
// message text.
func (p *proc) events(name string) []map[string]any {
	b, _ := os.ReadFile(p.log)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	var out []map[string]any
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line[rotor.LogEvent] == name {
			out = append(out, line)
		}
	}
	return out
}

// stop sends SIGTERM, and SIGKILL if the process is still there after 20 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// run runs bin to completion and returns its stdout; stderr goes in the
// error when it fails.
func run(env []string, bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %v: %w: %s", bin, args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}
