package agent_test

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/client/clienttest"
)

// TestSignalHookAndSecrets: --signal reaches the process in --pid-file,
// and an --exec hook does not inherit ROTOR_TOKEN. Not parallel: it sets
// the environment and catches a signal in the test process.
func TestSignalHookAndSecrets(t *testing.T) {
	ca := clienttest.New(t, clienttest.Options{})
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

	t.Setenv("ROTOR_TOKEN", cfg.Token)
	cfg = testConfig(t, ca)
	envFile := filepath.Join(t.TempDir(), "env")
	cfg.Once, cfg.Exec = true, "env > "+envFile
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range lines(t, envFile) {
		if line == "ROTOR_TOKEN="+cfg.Token || len(env) == 0 {
			t.Error("the exec hook inherited ROTOR_TOKEN")
		}
	}
}

// TestHookFailureCounted: a failing or hanging hook is logged and counted,
// and the certificate stays in place.
func TestHookFailureCounted(t *testing.T) {
	t.Parallel()
	ca := clienttest.New(t, clienttest.Options{})
	tests := []struct {
		name string
		exec string
	}{
		{name: "fail/exit-status", exec: "exit 3"},
		{name: "fail/timeout", exec: "sleep 30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, ca)
			cfg.Once, cfg.Exec, cfg.ExecTimeout = true, tt.exec, 200*time.Millisecond
			a := newAgent(t, cfg)
			if err := a.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			onDisk(t, cfg.OutDir)
			if n := metric(t, a, `rotor_agent_failures_total{cause="hook"}`); n != 1 {
				t.Errorf("hook failures %v, want 1", n)
			}
		})
	}
}
