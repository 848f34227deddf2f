package main

import (
	"crypto/x509"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/issuer"
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
			back := time.Now()
			load.waitCreated(t, 1, 30*time.Second)
			recovered := time.Since(back)
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
			t.Logf("pg_ctl stop -m %s: %v store_unavailable=%d issuing_again_after=%v", mode, a,
				load.failed(rotor.EStoreUnavailable), recovered.Round(time.Millisecond))
		})
	}
}

// signerCA is a CA that `rotor-ca init` made in a signer backend, served
// from its issuer.conf and bundle with a SQLite store and a 1s
// --sign-timeout, as the signer fault tests drive it.
type signerCA struct {
	*caRun
	token, db    string            // a token for default/signer, the store's file
	root, issuer *x509.Certificate // as init made them
}

// startSignerCA runs `rotor-ca init --data-dir dir/ca initArgs...` and
// serves what it made, with env for both.
func startSignerCA(t *testing.T, env []string, dir string, initArgs ...string) *signerCA {
	t.Helper()
	caDir, data := filepath.Join(dir, "ca"), filepath.Join(dir, "data")
	initCA(t, env, caDir, initArgs...)
	bundle := filepath.Join(caDir, issuer.BundleFile)
	c := &signerCA{caRun: serveCA(t, env, bundle, "--data-dir", data, "--issuer-config",
		filepath.Join(caDir, issuer.ConfigFile), "--trust-bundle", bundle, "--sign-timeout", "1s"),
		token: createToken(t, data, "default", "signer"), db: filepath.Join(data, "rotor.db"),
		root:   readCerts(t, filepath.Join(caDir, issuer.RootCertFile))[0],
		issuer: readCerts(t, filepath.Join(caDir, issuer.IssuerCertFile))[0]}
	c.issueOK(t)
	return c
}

// issueOK issues with the token and checks the certificate: signed by the
// issuing key, chained to the root.
func (c *signerCA) issueOK(t *testing.T) {
	t.Helper()
	got, err := issue(t.Context(), c.client(t), c.token)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	if err := verifyIssued(got, c.root); err != nil || got.Leaf.CheckSignatureFrom(c.issuer) != nil {
		t.Fatalf("certificate not signed by the issuing key under the root: %v", err)
	}
}

// checkOutage takes the signer away with inject: /readyz fails, and enough
// issuances to trip the signer's breaker (from then on only its background
// probe can find the signer healthy) answer 503 signer-unavailable with
// nothing issued or recorded; the outage holds until probes of the
// breaker's probes have failed too (rotor_signer_errors_total counts them).
// Once heal has brought it back, the same process recovers by itself:
// /readyz passes and issueOK issues.
func (c *signerCA) checkOutage(t *testing.T, probes int, inject, heal func(t *testing.T)) {
	t.Helper()
	cl := c.client(t)
	rows := countRows(t, c.db, `SELECT count(*) FROM issuances`)
	issuedBefore := c.metric(t, "rotor_issuances_total")
	inject(t)
	healed := false
	t.Cleanup(func() { // a failed case must not leave the next one a broken signer
		if !healed {
			heal(t)
		}
	})
	e2etest.WaitFor(t, "/readyz to fail", 30*time.Second, func() bool { return c.ready() == http.StatusServiceUnavailable })
	for range 3 {
		_, err := issue(t.Context(), cl, c.token)
		if code := rotor.ErrorCodeOf(err); code != rotor.ESignerUnavailable || client.RetryAfter(err) <= 0 {
			t.Fatalf("issue during the fault: %v (code %q, Retry-After %v), want %q with a Retry-After",
				err, code, client.RetryAfter(err), rotor.ESignerUnavailable)
		}
	}
	failed := c.metric(t, "rotor_signer_errors_total")
	e2etest.WaitFor(t, "the breaker's probes to fail", 30*time.Second, func() bool {
		return c.metric(t, "rotor_signer_errors_total") >= failed+float64(probes)
	})
	if got := countRows(t, c.db, `SELECT count(*) FROM issuances`); got != rows {
		t.Errorf("%d issuance rows during the fault, want %d", got, rows)
	}
	if got := c.metric(t, "rotor_issuances_total"); got != issuedBefore {
		t.Errorf("rotor_issuances_total moved from %v to %v during the fault", issuedBefore, got)
	}
	heal(t)
	healed, back := true, time.Now()
	e2etest.WaitFor(t, "/readyz to recover", 30*time.Second, func() bool { return c.ready() == http.StatusOK })
	t.Logf("ready again %v after the signer came back", time.Since(back).Round(10*time.Millisecond))
	c.issueOK(t)
	if c.Exited() {
		t.Fatal("rotor-ca exited")
	}
}
