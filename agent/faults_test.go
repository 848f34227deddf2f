package agent_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
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
