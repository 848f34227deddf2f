package deploy

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/testenv"
)

// quickStartBlocks are the ```sh blocks of the README's "## Quick start"
// section, in order: what a newcomer types.
func quickStartBlocks(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no ## Quick start section")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)\n```sh\n(.*?)\n```\n").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 3 {
		t.Fatalf("the quick start has %d sh blocks, want the CA, curl and agent ones", len(blocks))
	}
	return blocks
}

// TestREADMEQuickStart runs the README's quick start as written, its
// blocks in order in one shell, in a fresh copy of the repository (the
// files git tracks), and checks what each step says it shows: the
// certificate answer, the audit row, the agent's certificate, a rotation
// run through --exec, the agent's readiness and metrics.
func TestREADMEQuickStart(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"openssl", "curl", "sqlite3", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, tool, "apt-get install -y "+tool)
		}
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:8443"); err != nil {
		t.Fatalf("the quick start serves on 127.0.0.1:8443, which is taken: %v", err)
	} else {
		ln.Close()
	}
	dir := copyRepo(t)
	script := "set -euo pipefail\n" + strings.Join(quickStartBlocks(t), "\n")
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, killed whatever happens, so no CA or agent
	// it started in the background outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // nothing may be left
	err := cmd.Wait()
	text := out.String()
	if err != nil {
		t.Fatalf("the quick start failed: %v\n%s", err, text)
	}
	for _, want := range []string{`"certificate":`, "|default|webapp|", "subject=CN = webapp.default.serviceaccount", "ok: certificate valid",
		"rotated to ", "rotor_agent_certificate_expiration_timestamp_seconds"} {
		if !strings.Contains(text, want) {
			t.Errorf("the quick start's output lacks %q:\n%s", want, text)
		}
	}
}

// copyRepo copies the files git tracks into a new directory.
func copyRepo(t *testing.T) string {
	t.Helper()
	list, err := exec.Command("git", "-C", repoRoot, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dir := t.TempDir()
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the work tree, not yet committed
			}
			t.Fatal(err)
		}
		info, err := os.Stat(filepath.Join(repoRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
