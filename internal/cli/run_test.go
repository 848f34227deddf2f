package cli_test

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"testing"

	"github.com/rotor-dev/rotor/internal/cli"
)

// TestRunVersion: --version is answered before any command is looked up,
// even where a default command takes flags, and never runs a command.
func TestRunVersion(t *testing.T) {
	ran := false
	cmds := []cli.Command{{Name: "", Run: func(context.Context, []string, io.Writer, io.Writer) error {
		ran = true
		return nil
	}}}
	line := regexp.MustCompile(`^prog version=\S+ revision=\S+ modified=(true|false) go=go\S+\n$`)
	tests := []struct {
		name    string
		args    []string
		want    int
		version bool
	}{
		{"ok/double-dash", []string{"--version"}, 0, true},
		{"ok/single-dash", []string{"-version"}, 0, true},
		{"ok/not-first-is-a-flag", []string{"--x", "--version"}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ran = false
			var out bytes.Buffer
			if got := cli.Run(context.Background(), "prog", "usage\n", cmds, tc.args, &out, io.Discard); got != tc.want {
				t.Fatalf("Run(%q) = %d, want %d", tc.args, got, tc.want)
			}
			if tc.version != line.Match(out.Bytes()) || tc.version == ran {
				t.Errorf("Run(%q): printed %q, ran the command: %t", tc.args, out.String(), ran)
			}
		})
	}
}
