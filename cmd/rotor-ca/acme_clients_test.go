package main

import (
	"path/filepath"
	"testing"

	"github.com/rotor-dev/rotor"
)

var (
	acmeWebapp = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}
	acmeOther  = rotor.Identity{Namespace: "default", ServiceAccount: "db"}.DNSName("cluster.local")
)

// TestCertbot runs Debian's certbot against the real rotor-ca on each
// store, as docs/acme.md does: it binds with the EAB key rotor-ca printed,
// obtains a certificate with a manual hook that would fail if any
// challenge were ever run, renews it, is refused another identity's name,
// and revokes; openssl verifies what it got, the store holds the audit and
// refusal rows, and the revoked certificate's renewal info says renew now.
func TestCertbot(t *testing.T) {
	certbot := needCLI(t, "certbot")
	needTools(t, "openssl")
	for _, st := range auditStores {
		t.Run(st.name, func(t *testing.T) {
			r := newACMERun(t, st)
			kid, hmac := r.eab(t, acmeWebapp)
			dns := acmeWebapp.DNSName("cluster.local")
			env := []string{"REQUESTS_CA_BUNDLE=" + r.root}
			dirs := []string{"--config-dir", "cb/config", "--work-dir", "cb/work", "--logs-dir", "cb/logs", "--non-interactive"}
			certonly := func(name string, eab ...string) (string, bool) {
				args := append([]string{"certonly", "--server", r.directory(), "--manual", "--manual-auth-hook", "/bin/false",
					"--preferred-challenges", "http", "--agree-tos", "--register-unsafely-without-email", "-d", name}, eab...)
				return r.run(t, env, certbot, append(args, dirs...)...)
			}
			if out, ok := certonly(dns, "--eab-kid", kid, "--eab-hmac-key", hmac); !ok {
				t.Fatalf("certbot certonly: %s", out)
			}
			live := filepath.Join("cb", "config", "live", dns)
			cert, chain := filepath.Join(live, "cert.pem"), filepath.Join(live, "chain.pem")
			first := r.openssl(t, cert, chain, dns)
			r.audited(t, first, acmeWebapp)
			if out, ok := r.run(t, env, certbot, append([]string{"renew", "--force-renewal", "--no-random-sleep-on-renew"}, dirs...)...); !ok {
				t.Fatalf("certbot renew: %s", out)
			}
			second := r.openssl(t, cert, chain, dns)
			if second == first {
				t.Fatalf("certbot renew kept serial %s", first)
			}
			r.audited(t, second, acmeWebapp)
			if out, ok := certonly(acmeOther); ok {
				t.Fatalf("certbot got %s, another identity's name: %s", acmeOther, out)
			}
			r.refused(t, acmeWebapp)
			if out, ok := r.run(t, env, certbot, append([]string{"revoke", "--server", r.directory(), "--cert-path", cert,
				"--reason", "keycompromise", "--no-delete-after-revoke"}, dirs...)...); !ok {
				t.Fatalf("certbot revoke: %s", out)
			}
			r.renewNow(t, cert)
		})
	}
}

// TestLegoCLI runs Debian's lego against the real rotor-ca on each store:
// run, renew, another identity's name refused, revoke. lego insists on a
// challenge flag, so it gets --http with a port it never opens: every
// authorization is valid already.
func TestLegoCLI(t *testing.T) {
	lego := needCLI(t, "lego")
	needTools(t, "openssl")
	for _, st := range auditStores {
		t.Run(st.name, func(t *testing.T) {
			r := newACMERun(t, st)
			kid, hmac := r.eab(t, acmeWebapp)
			dns := acmeWebapp.DNSName("cluster.local")
			env := []string{"LEGO_CA_CERTIFICATES=" + r.root}
			legoCmd := func(name string, cmd ...string) (string, bool) {
				args := []string{"--server", r.directory(), "--eab", "--kid", kid, "--hmac", hmac, "--email", "ops@example.com",
					"--accept-tos", "--path", "lg", "--http", "--http.port", "127.0.0.1:1", "--domains", name}
				return r.run(t, env, lego, append(args, cmd...)...)
			}
			if out, ok := legoCmd(dns, "run"); !ok {
				t.Fatalf("lego run: %s", out)
			}
			cert := filepath.Join("lg", "certificates", dns+".crt")
			issuer := filepath.Join("lg", "certificates", dns+".issuer.crt")
			first := r.openssl(t, cert, issuer, dns)
			r.audited(t, first, acmeWebapp)
			if out, ok := legoCmd(dns, "renew", "--no-random-sleep"); !ok {
				t.Fatalf("lego renew: %s", out)
			}
			second := r.openssl(t, cert, issuer, dns)
			if second == first {
				t.Fatalf("lego renew kept serial %s", first)
			}
			r.audited(t, second, acmeWebapp)
			if out, ok := legoCmd(acmeOther, "run"); ok {
				t.Fatalf("lego got %s, another identity's name: %s", acmeOther, out)
			}
			r.refused(t, acmeWebapp)
			if out, ok := legoCmd(dns, "revoke", "--keep"); !ok {
				t.Fatalf("lego revoke: %s", out)
			}
			r.renewNow(t, cert)
		})
	}
}
