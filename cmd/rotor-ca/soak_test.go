package main

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testenv"
)

var soakFor = flag.Duration("soak", 0,
	"how long TestSoak runs (default 60s with CI=true, else 8s); give go test a -timeout above it")

// Soak settings, sized for a 2-core machine that also runs the other
// packages' end-to-end tests (go test runs packages side by side): each
// workload renews every soakPace, which keeps the soak near one core, and
// a stalled CA shows as a gap in 201s.
const (
	soakWorkloads = 32
	soakPace      = 100 * time.Millisecond
	soakMaxGap    = 30 * time.Second // longer without a 201 is a hang
)

func soakDuration() time.Duration {
	switch {
	case *soakFor > 0:
		return *soakFor
	case os.Getenv("CI") == "true":
		return 60 * time.Second
	}
	return 8 * time.Second
}

// TestSoak runs many workloads (tokens, then mTLS renewals) against one
// rotor-ca on a PostgreSQL of its own for a bounded time, crashes the
// database (pg_ctl stop -m immediate) half-way and starts it again. The
// CA must keep issuing before and after without a restart, answer nothing
// but 503 store-unavailable in between, and at the end every 201 a client
// saw must have exactly one row holding the very certificate it received.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak; skipped with -short")
	}
	// Not parallel: it keeps a core busy, which the tests that run with 3s
	// certificates or 2s deadlines must not share with it.
	d := soakDuration()
	pg := testenv.StartPostgres(t)
	ca, token := servePostgres(t, pg.URL)
	start := time.Now()
	load := startFleet(t, ca, token, soakWorkloads, soakPace)
	restarted := false
	last, lastAt, longest := 0, time.Now(), time.Duration(0)
	for time.Since(start) < d {
		if !restarted && time.Since(start) >= d/2 {
			pg.Stop(t, testenv.StopImmediate)
			// Long enough for every workload to meet the outage.
			outage := load.failed(rotor.EStoreUnavailable)
			e2etest.WaitFor(t, "the fleet to meet the outage", soakMaxGap, func() bool {
				return load.failed(rotor.EStoreUnavailable) >= outage+soakWorkloads
			})
			pg.Start(t)
			restarted = true
		}
		now := time.Now()
		if n := load.created(); n > last {
			longest = max(longest, now.Sub(lastAt))
			last, lastAt = n, now
		}
		if now.Sub(lastAt) > soakMaxGap {
			t.Fatalf("no certificate for %v; failures: %v", now.Sub(lastAt), load.unexpected())
		}
		time.Sleep(50 * time.Millisecond) // how often the gap is sampled
	}
	load.stop()
	if other := load.unexpected(rotor.EStoreUnavailable); len(other) > 0 {
		t.Errorf("failures other than %s: %v", rotor.EStoreUnavailable, other)
	}
	if ca.Exited() {
		t.Fatal("rotor-ca exited")
	}
	a := load.audit(t, openPostgresDB(t, pg.URL))
	t.Logf("soak %v, %d workloads, one PostgreSQL crash and restart: %v store_unavailable=%d longest_gap=%v",
		d, soakWorkloads, a, load.failed(rotor.EStoreUnavailable), longest.Round(time.Millisecond))
}
