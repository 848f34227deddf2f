package agent_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

// TestWriteFailureKeepsPair: while OutDir refuses writes, the agent retries
// writing the pair it was issued instead of asking the CA for another one
// per retry; only past that pair's renewal point does it ask once more.
// When the directory is writable again the held pair goes to disk, with no
// further issuance, and the hook runs for it.
func TestWriteFailureKeepsPair(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{TTL: time.Hour})
	cfg := testConfig(t, ca)
	cfg.Once = true
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, version := onDisk(t, cfg.OutDir)
	restore := readOnly(t, cfg.OutDir)
	clock := &testClock{}
	cfg.Once, cfg.Now, cfg.Rand = false, clock.now, func() float64 { return 0.01 }
	cfg.KeyType = rotor.ECDSAP384 // the certificate on disk is due at once
	hooks := hookLog(t, &cfg)
	a := newAgent(t, cfg)
	stop := start(t, a)
	defer stop()
	writeFailures := func() float64 { return failures(t, a, "write") }

	eventually(t, "four failed writes", func() bool { return writeFailures() >= 4 })
	if n := len(ca.Issuances()); n != 2 {
		t.Fatalf("%d issuances after %v failed writes, want 2: one for the held pair", n, writeFailures())
	}
	// The held pair of a one-hour certificate is due 40 minutes in.
	clock.advance(45 * time.Minute)
	seen := writeFailures()
	eventually(t, "a new pair past the renewal point", func() bool {
		return len(ca.Issuances()) >= 3 && writeFailures() >= seen+3
	})
	if n := len(ca.Issuances()); n != 3 {
		t.Fatalf("%d issuances, want 3: one more past the held pair's renewal point", n)
	}
	if now, v := onDisk(t, cfg.OutDir); v != version || !now.Leaf.Equal(before.Leaf) {
		t.Fatalf("the files changed while the directory was read-only: %s -> %s", version, v)
	}

	restore()
	eventually(t, "the held pair on disk", func() bool { _, v := onDisk(t, cfg.OutDir); return v != version })
	iss := ca.Issuances()
	cert, _ := onDisk(t, cfg.OutDir)
	if len(iss) != 3 || cert.Leaf.SerialNumber.Text(16) != iss[2].Serial {
		t.Errorf("disk holds %x; want the held pair %s, with no issuance since (%d)", cert.Leaf.SerialNumber,
			iss[len(iss)-1].Serial, len(iss))
	}
	eventually(t, "the hook", func() bool { return len(lines(t, hooks)) > 0 })
	if got := lines(t, hooks); len(got) != 1 || got[0] != iss[2].Serial {
		t.Errorf("hook ran for %v, want once for %s", got, iss[2].Serial)
	}
	if code, _ := get(a, "/healthz"); code != http.StatusOK {
		t.Errorf("healthz after the write = %d, want 200", code)
	}
}

// faultCauses are the causes a fault must be told apart from.
var faultCauses = []string{string(rotor.ECAUnreachable), string(rotor.ECAUntrusted), string(rotor.EUnauthenticated),
	"token", "write"}

// TestFaultCauses: each fault is counted under its own cause, from zero,
// and logged as EventFailed with that cause; a refusal by the CA carries
// its problem's status, instance and detail.
func TestFaultCauses(t *testing.T) {
	t.Parallel()
	ca, other, down := catest.New(t, catest.Options{}), catest.New(t, catest.Options{}), catest.New(t, catest.Options{})
	down.SetMode(catest.Unreachable)
	tests := []struct {
		name    string
		ca      *catest.CA
		mut     func(*testing.T, *agent.Config)
		cause   string
		level   slog.Level
		refusal bool
	}{
		{name: "ok/ca-unreachable", ca: down, mut: func(*testing.T, *agent.Config) {},
			cause: string(rotor.ECAUnreachable), level: slog.LevelWarn},
		{name: "ok/ca-untrusted-bundle", ca: ca, mut: func(t *testing.T, c *agent.Config) {
			c.CABundleFile = testConfig(t, other).CABundleFile
		}, cause: string(rotor.ECAUntrusted), level: slog.LevelError},
		{name: "ok/ca-untrusted-pin", ca: ca, mut: func(_ *testing.T, c *agent.Config) {
			c.CABundleFile, c.CAFingerprint = "", rotor.Fingerprint(other.Root.Raw)
		}, cause: string(rotor.ECAUntrusted), level: slog.LevelError},
		{name: "ok/refused", ca: ca, mut: func(_ *testing.T, c *agent.Config) { c.Token = rotor.TokenPrefix + "unknown" },
			cause: string(rotor.EUnauthenticated), level: slog.LevelError, refusal: true},
		{name: "ok/token-missing", ca: ca, mut: func(t *testing.T, c *agent.Config) {
			c.Token, c.TokenFile = "", filepath.Join(t.TempDir(), "absent")
		}, cause: "token", level: slog.LevelWarn},
		{name: "ok/write-failed", ca: ca, mut: func(t *testing.T, c *agent.Config) { readOnly(t, c.OutDir) },
			cause: "write", level: slog.LevelWarn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, tt.ca)
			cfg.Once, cfg.OnceTimeout, cfg.Rand = true, 1500*time.Millisecond, func() float64 { return 0.01 }
			logs := recordLogs(t, &cfg)
			tt.mut(t, &cfg)
			a := newAgent(t, cfg)
			checkCauses(t, a, "")
			if err := a.Run(context.Background()); err == nil {
				t.Fatal("Run succeeded despite the fault")
			}
			checkCauses(t, a, tt.cause)
			failed := logs.events(agent.EventFailed)
			if len(failed) == 0 {
				t.Fatal("no failure logged")
			}
			for _, rec := range failed {
				if rec.attrs["cause"] != tt.cause || rec.level != tt.level {
					t.Errorf("logged cause %v at %v, want %s at %v", rec.attrs["cause"], rec.level, tt.cause, tt.level)
				}
			}
			if attrs := failed[0].attrs; tt.refusal {
				if inst, _ := attrs["instance"].(string); attrs["status"] != int64(http.StatusUnauthorized) ||
					!strings.HasPrefix(inst, "urn:rotor:request:") || attrs["detail"] == "" {
					t.Errorf("refusal logged without the CA's problem: %v", attrs)
				}
			}
		})
	}
}

// checkCauses checks that every fault cause is exported, and that only
// want ("" for none) has been counted.
func checkCauses(t *testing.T, a *agent.Agent, want string) {
	t.Helper()
	_, page := get(a, "/metrics")
	for _, c := range faultCauses {
		if !strings.Contains(page, `rotor_agent_failures_total{cause="`+c+`"} `) {
			t.Errorf("cause %s is not exported", c)
		}
		if n := failures(t, a, c); (c == want) != (n > 0) {
			t.Errorf("failures with cause %s: %v", c, n)
		}
	}
}

// TestOnceWaitsForCA: --once started together with its CA retries until the
// CA is up, well past the five tries it used to give up after, and exits
// with a certificate on disk.
func TestOnceWaitsForCA(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mode     catest.Mode
		cause    string
		failures float64 // before the CA comes up
	}{
		{name: "ok/unreachable", mode: catest.Unreachable, cause: string(rotor.ECAUnreachable), failures: 7},
		// 503 with Retry-After: 1, so a second apart.
		{name: "ok/unavailable", mode: catest.Unavailable, cause: string(rotor.EStoreUnavailable), failures: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ca := catest.New(t, catest.Options{})
			ca.SetMode(tt.mode)
			cfg := testConfig(t, ca)
			cfg.Once, cfg.OnceTimeout, cfg.Rand = true, time.Minute, func() float64 { return 0.01 }
			a := newAgent(t, cfg)
			done := make(chan error, 1)
			go func() { done <- a.Run(context.Background()) }()
			eventually(t, "failures while the CA is away", func() bool {
				return failures(t, a, tt.cause) >= tt.failures
			})
			ca.SetMode(catest.Up)
			if err := <-done; err != nil {
				t.Fatalf("--once after the CA came up: %v", err)
			}
			cert, _ := onDisk(t, cfg.OutDir)
			if iss := ca.Issuances(); len(iss) != 1 || iss[0].Serial != cert.Leaf.SerialNumber.Text(16) {
				t.Errorf("disk holds %x, CA issued %d", cert.Leaf.SerialNumber, len(iss))
			}
		})
	}
}

// TestRetryAfter: a 503 with Retry-After: 1 holds every retry back at least
// a second, although the backoff for a five-second certificate would retry
// within 50-500ms; when the CA is back the agent gets its certificate.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	ca.SetMode(catest.Unavailable)
	cfg := testConfig(t, ca)
	cfg.TTL = 5 * time.Second
	logs := recordLogs(t, &cfg)
	stop := start(t, newAgent(t, cfg))
	defer stop()
	eventually(t, "three failures", func() bool { return len(logs.events(agent.EventFailed)) >= 3 })
	ca.SetMode(catest.Up)
	eventually(t, "the certificate", func() bool { return len(logs.events(agent.EventWritten)) > 0 })
	failed := logs.events(agent.EventFailed)
	for i, rec := range failed {
		if wait, _ := rec.attrs["retry_in"].(time.Duration); wait < time.Second {
			t.Errorf("failure %d (%v): retry in %v, want at least the 1s of Retry-After", i+1, rec.attrs["error"], wait)
		}
		if i > 0 && rec.time.Sub(failed[i-1].time) < time.Second {
			t.Errorf("attempt %d came %v after the one before, within Retry-After", i+1, rec.time.Sub(failed[i-1].time))
		}
	}
	if _, _, err := client.ReadFiles(cfg.OutDir); err != nil {
		t.Error(err)
	}
}
