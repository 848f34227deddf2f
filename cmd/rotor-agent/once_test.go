package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
	"github.com/rotor-dev/rotor/internal/cli"
)

// TestOnceTimeoutFlag: --once-timeout reaches agent.Config from the flag or
// from ROTOR_ONCE_TIMEOUT, the flag winning, with agent.DefaultOnceTimeout
// when neither is given; --help lists it with its variable. Not parallel:
// it sets the environment.
func TestOnceTimeoutFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     string
		want    time.Duration
		wantErr bool
	}{
		{name: "ok/default", want: agent.DefaultOnceTimeout},
		{name: "ok/flag", args: []string{"--once-timeout", "30s"}, want: 30 * time.Second},
		{name: "ok/env", env: "2m", want: 2 * time.Minute},
		{name: "ok/flag-over-env", args: []string{"--once-timeout", "10s"}, env: "2m", want: 10 * time.Second},
		{name: "fail/not-a-duration", args: []string{"--once-timeout", "soon"}, wantErr: true},
		{name: "fail/env-not-a-duration", env: "soon", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("ROTOR_ONCE_TIMEOUT", tt.env)
			}
			fs := cli.NewFlagSet("rotor-agent", envPrefix, io.Discard)
			var (
				cfg agent.Config
				opt options
			)
			register(fs, &cfg, &opt)
			err := fs.Parse(tt.args)
			if (err != nil) != tt.wantErr || err == nil && cfg.OnceTimeout != tt.want {
				t.Errorf("Parse = %v, OnceTimeout %v; want %v, error %v", err, cfg.OnceTimeout, tt.want, tt.wantErr)
			}
		})
	}
	var help bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, io.Discard, &help); code != 0 ||
		!strings.Contains(help.String(), "--once-timeout duration") || !strings.Contains(help.String(), "[$ROTOR_ONCE_TIMEOUT]") {
		t.Errorf("--help (exit %d) does not list --once-timeout with its variable:\n%s", code, help.String())
	}
}

// TestOnceExitCode: rotor-agent --once exits 0 with a certificate on disk,
// 1 when the CA refuses, 1 when the hook failed (the certificate stays on
// disk), and 2 for a negative --once-timeout.
func TestOnceExitCode(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	dir := t.TempDir()
	bundle, good, bad := filepath.Join(dir, "root.crt"), filepath.Join(dir, "token"), filepath.Join(dir, "bad-token")
	for path, data := range map[string]string{bundle: string(ca.Bundle.PEM),
		good: ca.Token(t, rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}), bad: rotor.TokenPrefix + "unknown"} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		token     string
		args      []string
		want      int
		wantFiles bool
	}{
		{name: "ok/certificate", token: good, args: []string{"--exec", "true"}, want: 0, wantFiles: true},
		{name: "fail/refused", token: bad, want: 1},
		{name: "fail/hook", token: good, args: []string{"--exec", "exit 3"}, want: 1, wantFiles: true},
		{name: "fail/negative-once-timeout", token: good, args: []string{"--once-timeout", "-1s"}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			args := append([]string{"--once", "--ca-url", ca.URL, "--ca-bundle", bundle, "--token-file", tt.token,
				"--out-dir", out}, tt.args...)
			var stderr bytes.Buffer
			if code := run(context.Background(), args, io.Discard, &stderr); code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr.String())
			}
			if _, _, err := client.ReadFiles(out); (err == nil) != tt.wantFiles {
				t.Errorf("files on disk: %v, want %v", err == nil, tt.wantFiles)
			}
		})
	}
}
