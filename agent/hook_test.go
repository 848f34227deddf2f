package agent_test

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/internal/catest"
)

// TestSignalHookAndExecEnv: --signal reaches the process in --pid-file,
// and an --exec hook gets ExecEnv, not the agent's environment, with what
// changed added. Not parallel: it sets the environment and catches a signal
// in the test process.
func TestSignalHookAndExecEnv(t *testing.T) {
	ca := catest.New(t, catest.Options{})
	cfg := testConfig(t, ca)
	cfg.Once = true
	pidFile := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Signal, cfg.PIDFile = syscall.SIGUSR1, pidFile
	got := make(chan os.Signal, 1)
	signal.Notify(got, syscall.SIGUSR1)
	defer signal.Stop(got)
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Error("no SIGUSR1 after the new certificate")
	}

	t.Setenv("ROTOR_AGENT_TEST_SECRET", cfg.Token)
	cfg = testConfig(t, ca)
	envFile := filepath.Join(t.TempDir(), "env")
	cfg.Once, cfg.Exec = true, "env > "+envFile
	cfg.ExecEnv = []string{"PATH=" + os.Getenv("PATH"), "GIVEN=yes"}
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range lines(t, envFile) {
		name, _, _ := strings.Cut(line, "=")
		seen[name] = true
		if strings.Contains(line, cfg.Token) {
			t.Errorf("the exec hook saw the token: %s", line)
		}
	}
	for _, name := range []string{"GIVEN", "ROTOR_CERT_SERIAL", "ROTOR_CERT_FILE", "ROTOR_SPIFFE_ID"} {
		if !seen[name] {
			t.Errorf("the exec hook's environment lacks %s: %v", name, seen)
		}
	}
	if seen["ROTOR_AGENT_TEST_SECRET"] {
		t.Error("the exec hook inherited the agent's environment instead of ExecEnv")
	}
}

// TestHookFailureCounted: a failing or hanging hook is logged and counted,
// and the certificate stays in place. In Once mode Run fails, so an init
// container or cron job shows it; a running agent carries on.
func TestHookFailureCounted(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	tests := []struct {
		name string
		exec string
		once bool
	}{
		{name: "fail/once-exit-status", exec: "exit 3", once: true},
		{name: "fail/once-timeout", exec: "sleep 30", once: true},
		{name: "fail/running-exit-status", exec: "exit 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, ca)
			cfg.Once, cfg.Exec, cfg.ExecTimeout = tt.once, tt.exec, 200*time.Millisecond
			a := newAgent(t, cfg)
			hookFailures := func() float64 { return failures(t, a, "hook") }
			if tt.once {
				if err := a.Run(context.Background()); err == nil {
					t.Error("--once with a failing hook succeeded")
				}
			} else {
				stop := start(t, a)
				eventually(t, "the hook failure", func() bool { return hookFailures() > 0 })
				stop()
			}
			onDisk(t, cfg.OutDir)
			if n := hookFailures(); n != 1 {
				t.Errorf("hook failures %v, want 1", n)
			}
		})
	}
}

// TestHookOutputLogged: what a successful --exec command prints is logged
// with the serial, as the README's `echo rotated to $ROTOR_CERT_SERIAL`
// expects; a silent command logs no hook line.
func TestHookOutputLogged(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, exec, want string
	}{
		{"ok/echo", "echo rotated to $ROTOR_CERT_SERIAL", "rotated to "},
		{"ok/silent", "true", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ca := catest.New(t, catest.Options{})
			cfg := testConfig(t, ca)
			cfg.Once, cfg.Exec = true, tt.exec
			logs := recordLogs(t, &cfg)
			if err := newAgent(t, cfg).Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			ev := logs.events(agent.EventHookRan)
			if tt.want == "" {
				if len(ev) != 0 {
					t.Fatalf("a silent hook logged %+v", ev)
				}
				return
			}
			serial := ca.Issuances()[0].Serial
			if len(ev) != 1 || ev[0].attrs["output"] != tt.want+serial || ev[0].attrs["serial"] != serial {
				t.Fatalf("hook lines %+v, want one with output %q", ev, tt.want+serial)
			}
		})
	}
}
