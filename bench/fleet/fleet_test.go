package fleet_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/bench/auditcheck"
	"github.com/rotor-dev/rotor/bench/fleet"
	"github.com/rotor-dev/rotor/bench/load"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// TestFleet starts 500 simulated agents within a second against a real
// rotor-ca on Postgres with 8 s certificates. Each gets one certificate by
// token and renews once over mTLS. No request may fail other than by the
// CA's shedding (which the agents wait out), and every certificate an
// agent received must have exactly one audit row. The figures (peak,
// p99) are logged, never asserted: the machine's speed is not the test's.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts rotor-ca; skipped with -short")
	}
	storeURL := testenv.PostgresURL(t)
	dir := t.TempDir()
	bin := e2etest.Build(t, dir, "./cmd/rotor-ca")[0]
	data := filepath.Join(dir, "data")
	ca := e2etest.Start(t, filepath.Join(dir, "ca.log"), bin, "serve", "--data-dir", data, "--store", storeURL,
		"--listen", "127.0.0.1:0", "--log-format", "json", "--cert-ttl", "8s")
	addr := ca.WaitEvent(t, rotor.EventServing, 60*time.Second)["addr"].(string)
	out, err := exec.Command(bin, "token", "create", "--data-dir", data, "--store", storeURL,
		"--namespace", "default", "--service-account", "fleet").Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	roots, err := load.ReadRoots(filepath.Join(data, "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	const agents, renewals = 500, 1
	st, err := fleet.Run(t.Context(), fleet.Config{URLs: []string{addr}, Roots: roots,
		Token: strings.TrimSpace(string(out)), Agents: agents, Start: time.Second, Renewals: renewals,
		Duration: 60 * time.Second, MaxInFlight: 64}) // the duration only stops a hung run
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first=%d renewals=%d shed=%v errors=%v peak=%d/s mean=%.0f/s p99=%s",
		st.First, st.Renewals, st.Shed, st.Errors, st.Peak, st.Mean, st.P99)
	if st.ErrorCount() != 0 || st.First != agents || st.Renewals != agents*renewals {
		t.Fatalf("first=%d (want %d) renewals=%d (want %d) errors=%v", st.First, agents, st.Renewals,
			agents*renewals, st.Errors)
	}
	counts, err := auditcheck.Check(t.Context(), storeURL, st.Serials)
	if err != nil {
		t.Fatal(err)
	}
	if !counts.OK() || counts.Created != agents*(1+renewals) {
		t.Fatalf("audit: %s", counts)
	}
}
