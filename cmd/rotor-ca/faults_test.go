package main

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// faultsPace is how long the fault tests' workloads wait between
// certificates: they run beside tests with 3s certificates, which must
// keep a share of the two cores.
const faultsPace = 10 * time.Millisecond

// servePostgres starts rotor-ca on the development PKI with its audit in
// the PostgreSQL database at storeURL, and returns it with a token for
// default/faults.
func servePostgres(t *testing.T, storeURL string, args ...string) (*caRun, string) {
	t.Helper()
	data := t.TempDir()
	storeArgs := []string{"--data-dir", data, "--store", storeURL}
	ca := serveCA(t, nil, filepath.Join(data, "root.crt"), append(storeArgs, args...)...)
	return ca, createTokenWith(t, "default", "faults", storeArgs...)
}

// ready is the status /readyz answers.
func (c *caRun) ready() int {
	code, _ := e2etest.HTTPGet(c.URL+"/readyz", c.Roots)
	return code
}

// TestStoreFaults stops the CA's PostgreSQL under load, both ways an
// operator or a crash does, and starts it again. During the outage every
// issuance, by token (whose lookup fails) and by mTLS renewal (signed, then
// not recorded), answers 503 store-unavailable with Retry-After and no
// certificate; afterwards the same rotor-ca process issues again by itself;
// and every 201 a client ever got has its row, holding the very certificate.
func TestStoreFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	for _, mode := range []testenv.StopMode{testenv.StopFast, testenv.StopImmediate} {
		t.Run("fail/stop-"+string(mode), func(t *testing.T) {
			t.Parallel()
			pg := testenv.StartPostgres(t)
			ca, token := servePostgres(t, pg.URL)
			cl := ca.client(t)
			load := startFleet(t, ca, token, 4, faultsPace)
			load.waitCreated(t, 20, 30*time.Second)
			key, err := rotor.GenerateKey(rotor.ECDSAP256, nil)
			if err != nil {
				t.Fatal(err)
			}
			held, err := issueKey(t.Context(), cl, key, client.IssueRequest{Token: token})
			load.record(held, err)
			if err != nil {
				t.Fatal(err)
			}
			probes := []struct {
				name string
				req  client.IssueRequest
			}{
				{"token", client.IssueRequest{Token: token}},
				{"mtls-renewal", client.IssueRequest{ClientCertificate: keyPair(held, key)}},
			}

			pg.Stop(t, mode)
			for _, p := range probes {
				got, err := issueKey(t.Context(), cl, key, p.req)
				load.record(got, err)
				if code := rotor.ErrorCodeOf(err); code != rotor.EStoreUnavailable || client.RetryAfter(err) <= 0 {
					t.Errorf("%s during the outage: %v (code %q, Retry-After %v), want %s with a Retry-After",
						p.name, err, code, client.RetryAfter(err), rotor.EStoreUnavailable)
				}
			}
			if code := ca.ready(); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz during the outage: %d, want 503", code)
			}
			refused := load.failed(rotor.EStoreUnavailable)
			e2etest.WaitFor(t, "the fleet to meet the outage", 30*time.Second, func() bool {
				return load.failed(rotor.EStoreUnavailable) >= refused+20
			})

			pg.Start(t)
			load.waitCreated(t, 20, 30*time.Second)
			for _, p := range probes {
				got, err := issueKey(t.Context(), cl, key, p.req)
				load.record(got, err)
				if err != nil {
					t.Errorf("%s after the restart: %v", p.name, err)
				}
			}
			if code := ca.ready(); code != http.StatusOK {
				t.Errorf("/readyz after the restart: %d, want 200", code)
			}
			if ca.Exited() {
				t.Fatal("rotor-ca exited")
			}
			load.stop()
			if other := load.unexpected(rotor.EStoreUnavailable); len(other) > 0 {
				t.Errorf("failures other than %s: %v", rotor.EStoreUnavailable, other)
			}
			a := load.audit(t, openPostgresDB(t, pg.URL))
			t.Logf("pg_ctl stop -m %s: %v store_unavailable=%d", mode, a, load.failed(rotor.EStoreUnavailable))
		})
	}
}
