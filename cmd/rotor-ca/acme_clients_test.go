package main

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/rotor-dev/rotor"
)

var (
	acmeWebapp = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}
	acmeDNS    = acmeWebapp.DNSName("cluster.local")
	acmeOther  = rotor.Identity{Namespace: "default", ServiceAccount: "db"}.DNSName("cluster.local")
)

// acmeCLI is what one ACME client's command line does, each step run in
// the test's directory; cert and chain are where it keeps what it got.
type acmeCLI struct {
	obtain, renew, other, revoke func() (string, bool)
	cert, chain                  string
}

// acmeClientRuns runs client (made for each store's CA, with an EAB key
// for webapp) on each store: it obtains a certificate that openssl
// verifies and that has its audit row, renews it (a new serial, audited),
// is refused another identity's name with a refusal row, and revokes it,
// after which its renewal info says renew now.
func acmeClientRuns(t *testing.T, client func(r *acmeRun, kid, hmac string) acmeCLI) {
	needTools(t, "openssl")
	for _, st := range auditStores {
		t.Run(st.name, func(t *testing.T) {
			r := newACMERun(t, st)
			kid, hmac := r.eab(t, acmeWebapp)
			c := client(r, kid, hmac)
			step := func(what string, do func() (string, bool), want bool) {
				if out, ok := do(); ok != want {
					t.Fatalf("%s: succeeded %v, want %v:\n%s", what, ok, want, out)
				}
			}
			step("obtain", c.obtain, true)
			first := r.openssl(t, c.cert, c.chain, acmeDNS)
			r.audited(t, first, acmeWebapp)
			step("renew", c.renew, true)
			second := r.openssl(t, c.cert, c.chain, acmeDNS)
			if second == first {
				t.Fatalf("renewal kept serial %s", first)
			}
			r.audited(t, second, acmeWebapp)
			step("order "+acmeOther, c.other, false)
			r.refused(t, acmeWebapp)
			step("revoke", c.revoke, true)
			r.renewNow(t, c.cert)
		})
	}
}

// TestCertbot runs Debian's certbot against the real rotor-ca on each
// store, as docs/acme.md does, with a manual hook that would fail if any
// challenge were ever run.
func TestCertbot(t *testing.T) {
	certbot := needCLI(t, "certbot")
	acmeClientRuns(t, func(r *acmeRun, kid, hmac string) acmeCLI {
		env := []string{"REQUESTS_CA_BUNDLE=" + r.root}
		dirs := []string{"--config-dir", "cb/config", "--work-dir", "cb/work", "--logs-dir", "cb/logs", "--non-interactive"}
		run := func(args ...string) func() (string, bool) {
			return func() (string, bool) { return r.run(t, env, certbot, slices.Concat(args, dirs)...) }
		}
		certonly := []string{"certonly", "--server", r.directory(), "--manual", "--manual-auth-hook", "/bin/false",
			"--preferred-challenges", "http", "--agree-tos", "--register-unsafely-without-email"}
		live := filepath.Join("cb", "config", "live", acmeDNS)
		cert := filepath.Join(live, "cert.pem")
		return acmeCLI{
			obtain: run(slices.Concat(certonly, []string{"--eab-kid", kid, "--eab-hmac-key", hmac, "-d", acmeDNS})...),
			renew:  run("renew", "--force-renewal", "--no-random-sleep-on-renew"),
			other:  run(slices.Concat(certonly, []string{"-d", acmeOther})...),
			revoke: run("revoke", "--server", r.directory(), "--cert-path", cert, "--reason", "keycompromise",
				"--no-delete-after-revoke"),
			cert: cert, chain: filepath.Join(live, "chain.pem"),
		}
	})
}

// TestLegoCLI runs Debian's lego against the real rotor-ca on each store.
// lego insists on a challenge flag, so it gets --http with a port it never
// opens: every authorization is valid already.
func TestLegoCLI(t *testing.T) {
	lego := needCLI(t, "lego")
	acmeClientRuns(t, func(r *acmeRun, kid, hmac string) acmeCLI {
		env := []string{"LEGO_CA_CERTIFICATES=" + r.root}
		run := func(name string, cmd ...string) func() (string, bool) {
			args := []string{"--server", r.directory(), "--eab", "--kid", kid, "--hmac", hmac, "--email", "ops@example.com",
				"--accept-tos", "--path", "lg", "--http", "--http.port", "127.0.0.1:1", "--domains", name}
			return func() (string, bool) { return r.run(t, env, lego, slices.Concat(args, cmd)...) }
		}
		certs := filepath.Join("lg", "certificates")
		return acmeCLI{
			obtain: run(acmeDNS, "run"),
			renew:  run(acmeDNS, "renew", "--no-random-sleep"),
			other:  run(acmeOther, "run"),
			revoke: run(acmeDNS, "revoke", "--keep"),
			cert:   filepath.Join(certs, acmeDNS+".crt"), chain: filepath.Join(certs, acmeDNS+".issuer.crt"),
		}
	})
}
