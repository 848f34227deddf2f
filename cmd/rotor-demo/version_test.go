package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestVersion runs each binary TestMain built with --version, as a user
// would: it exits 0 and prints the module version, the commit the work tree
// is at and whether it had changes (go build stamps them), and the Go
// version.
func TestVersion(t *testing.T) {
	root := filepath.Join("..", "..")
	revision, modified := "unknown", false // a build outside a git checkout has neither
	if out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output(); err == nil {
		revision = strings.TrimSpace(string(out))
		status, err := exec.Command("git", "-C", root, "status", "--porcelain").Output()
		if err != nil {
			t.Fatal(err)
		}
		modified = len(status) > 0
	}
	line := regexp.MustCompile(`^(rotor-[a-z]+) version=(\S+) revision=(\S+) modified=(true|false) go=(\S+)\n$`)
	for _, bin := range []string{"rotor-ca", "rotor-agent", "rotor-demo"} {
		t.Run("ok/"+bin, func(t *testing.T) {
			out, err := exec.Command(filepath.Join(binDir, bin), "--version").Output()
			if err != nil {
				t.Fatalf("%s --version: %v", bin, err)
			}
			m := line.FindStringSubmatch(string(out))
			if m == nil {
				t.Fatalf("%s --version printed %q", bin, out)
			}
			if m[1] != bin || m[3] != revision || m[4] != strconv.FormatBool(modified) || m[5] != runtime.Version() {
				t.Errorf("%s --version = %q, want %s … revision=%s modified=%t go=%s", bin, out, bin, revision, modified, runtime.Version())
			}
			// Go stamps a pseudo-version from the commit, or "(devel)"
			// where it cannot.
			if revision != "unknown" && !strings.Contains(m[2], revision[:12]) && m[2] != "(devel)" {
				t.Errorf("%s version %q does not name commit %s", bin, m[2], revision[:12])
			}
		})
	}
}
