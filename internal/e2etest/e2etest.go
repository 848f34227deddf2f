// Package e2etest is what tests share to drive the module's binaries and to
// read what they did: build and start them with their output in a log
// file, stop them as an operator would, wait for the events they log, poll
// what they serve, and replace and compare the files they read. It holds no
// state of its own, so tests using it may run in parallel.
package e2etest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a started binary whose stdout and stderr go to a log file.
type Proc struct {
	Cmd    *exec.Cmd
	Log    string        // path of the log file
	exited chan struct{} // closed once the process has exited
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Start runs bin with args, appending its output to logPath. The process
// is killed when the test ends if it is still running.
func Start(t testing.TB, logPath, bin string, args ...string) *Proc {
	t.Helper()
	return StartEnv(t, nil, logPath, bin, args...)
}

// StartEnv is Start with env added to the test's environment.
func StartEnv(t testing.TB, env []string, logPath, bin string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	return start(t, cmd, logPath, false)
}

// StartGroup is Start for a server that forks workers (nginx, HAProxy):
// it runs in a process group of its own, and when the test ends the whole
// group is sent SIGTERM and, a few seconds later, SIGKILL, so no worker
// outlives the test, even one whose master died first.
func StartGroup(t testing.TB, logPath, bin string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return start(t, cmd, logPath, true)
}

func start(t testing.TB, cmd *exec.Cmd, logPath string, group bool) *Proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, Log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.exited) }()
	t.Cleanup(func() {
		if group {
			killGroup(cmd.Process.Pid, p.exited)
			return
		}
		if !p.Exited() {
			_ = p.Cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// killGroup ends process group pgid: SIGTERM, then SIGKILL for whatever
// is left after five seconds. A group whose every member is gone answers
// ESRCH, which is how the wait ends.
func killGroup(pgid int, exited <-chan struct{}) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(-pgid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
}

// Stop sends SIGTERM and returns the exit code.
func (p *Proc) Stop(t testing.TB) int {
	t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM; log:\n%s", p.Cmd.Path, ReadFile(t, p.Log))
	}
	return p.Cmd.ProcessState.ExitCode()
}

// Build compiles the module's command packages (e.g. "./cmd/rotor-ca") into
// dir with one go build, so they link in parallel, and returns the
// binaries' paths in the same order.
func Build(t testing.TB, dir string, pkgs ...string) []string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, b)
	}
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		out[i] = filepath.Join(dir, filepath.Base(p))
	}
	return out
}

// moduleRoot is the nearest directory above the working directory (a test
// runs in its package's) holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// WaitEvent waits until the process's JSON log has a line whose
// rotor.LogEvent attribute is event, and returns that line's attributes.
// It fails the test if the process exits first or limit passes. Programs
// learn what a process did from its events, never from message text.
func (p *Proc) WaitEvent(t testing.TB, event string, limit time.Duration) map[string]any {
	t.Helper()
	var found map[string]any
	WaitFor(t, "event "+event+" in "+p.Log, limit, func() bool {
		if evs := Events(t, p.Log, event); len(evs) > 0 {
			found = evs[0]
			return true
		}
		if p.Exited() {
			t.Fatalf("%s exited before %s:\n%s", p.Cmd.Path, event, ReadFile(t, p.Log))
		}
		return false
	})
	return found
}

// Events returns the attributes of every line of the JSON log at path
// whose rotor.LogEvent attribute is event, oldest first.
func Events(t testing.TB, path, event string) []map[string]any {
	t.Helper()
	l := &JSONLog{}
	_, _ = l.Write([]byte(ReadFile(t, path)))
	return l.Events(event)
}

// ReadFile returns a file's contents, "" if it does not exist.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// WaitFor polls cond; the limit only stops a hung test.
func WaitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// HTTPGet fetches url with roots (nil: plain HTTP) and returns status and
// body, or status 0 if nothing answered.
func HTTPGet(url string, roots *x509.CertPool) (int, string) {
	hc := &http.Client{Timeout: 2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// Sample reads one series from a Prometheus text page, 0 if absent. A
// name without labels whose samples carry labels is their sum: the total
// over every label value (rotor_issuances_total over authenticators).
func Sample(page, series string) float64 {
	sc := bufio.NewScanner(strings.NewReader(page))
	sum := 0.0
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
		if rest, ok := strings.CutPrefix(line, series+"{"); ok && !strings.Contains(series, "{") {
			if _, v, ok := strings.Cut(rest, "} "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				sum += f
			}
		}
	}
	return sum
}
