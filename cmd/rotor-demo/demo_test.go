package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the demo as a newcomer would, with three-second
// certificates for ten seconds, so each service rotates several times under
// load, and checks its summary: no failed request, at least two rotations
// on each side, and each side's handshakes saw the other's new
// certificates.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs rotor-ca, two agents and two services for 10s; skipped with -short")
	}
	t.Parallel()
	out, code := runDemoBinary(t, filepath.Join(binDir, "rotor-demo"), "--duration", "10s", "--cert-ttl", "4s")
	if code != 0 {
		t.Fatalf("rotor-demo exited with %d", code)
	}
	got := lastLineKV(t, out)
	checks := []struct {
		key string
		min int
	}{
		{"requests", 50}, // ten a second for ten seconds, with room for a slow start
		{"rotations_webapp", 2},
		{"rotations_api", 2},
		{"peer_certs_seen_by_webapp", 3},
		{"peer_certs_seen_by_api", 3},
	}
	for _, c := range checks {
		if n, err := strconv.Atoi(got[c.key]); err != nil || n < c.min {
			t.Errorf("%s=%q, want at least %d", c.key, got[c.key], c.min)
		}
	}
	if got["failed"] != "0" || got["refused"] != "0" || got["result"] != "ok" {
		t.Errorf("result=%s failed=%s refused=%s, want ok, 0, 0", got["result"], got["failed"], got["refused"])
	}
}

// TestDemoReportsDeadProcess gives the demo a rotor-agent that is not one
// (rotor-ca, which refuses the agent's flags and exits): the demo must say
// so and fail.
func TestDemoReportsDeadProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs rotor-ca; skipped with -short")
	}
	t.Parallel()
	bin := binDir
	wrong := t.TempDir()
	for name, target := range map[string]string{"rotor-ca": "rotor-ca", "rotor-agent": "rotor-ca"} {
		if err := os.Symlink(filepath.Join(bin, target), filepath.Join(wrong, name)); err != nil {
			t.Fatal(err)
		}
	}
	out, code := runDemoBinary(t, filepath.Join(bin, "rotor-demo"), "--bin-dir", wrong, "--duration", "10s", "--cert-ttl", "3s")
	if got := lastLineKV(t, out); code != 1 || got["result"] != "fail" {
		t.Errorf("exit %d, result=%s; want 1, fail", code, got["result"])
	}
}

// binDir holds the three binaries side by side, built once by TestMain, so
// the demo uses them rather than building its own.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rotor-demo-test")
	if err != nil {
		panic(err)
	}
	// -buildvcs=auto stamps the commit as a user's go build does, even
	// where GOFLAGS says -buildvcs=false (TestVersion reads it back).
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", dir+string(filepath.Separator), "./cmd/rotor-ca", "./cmd/rotor-agent", "./cmd/rotor-demo")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runDemoBinary runs the demo binary and returns its standard output and exit
// code; the output is logged if the test fails.
func runDemoBinary(t *testing.T, demo string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, demo, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("demo output:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	})
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("rotor-demo: %v", err)
	}
	return stdout.String(), cmd.ProcessState.ExitCode()
}

// lastLineKV parses the summary's last line of key=value pairs.
func lastLineKV(t *testing.T, out string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	kv := map[string]string{}
	for f := range strings.FieldsSeq(lines[len(lines)-1]) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("last line %q is not key=value pairs", lines[len(lines)-1])
		}
		kv[k] = v
	}
	return kv
}

// TestRunUsage checks the exit codes of the command line.
func TestRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"ok/help", []string{"help"}, 0},
		{"ok/version", []string{"--version"}, 0},
		{"ok/demo-flags-help", []string{"--help"}, 0},
		{"ok/webapp-flags-help", []string{"webapp", "--help"}, 0},
		{"fail/unknown-command", []string{"proxy"}, 2},
		{"fail/cert-ttl-too-short", []string{"--cert-ttl", "1s"}, 2},
		{"fail/unknown-flag", []string{"--ttl", "6s"}, 2},
		{"fail/bad-api-identity", []string{"webapp", "--api-identity", "api"}, 2},
		{"fail/bad-log-format", []string{"api", "--log-format", "xml"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if got := run(context.Background(), tc.args, &out, &out); got != tc.want {
				t.Errorf("run(%q) = %d, want %d; output:\n%s", tc.args, got, tc.want, out.String())
			}
		})
	}
}
