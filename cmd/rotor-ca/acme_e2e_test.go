package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// acmeRun is one store's CA and the commands the ACME tests run against
// it, as docs/acme.md gives them.
type acmeRun struct {
	st   auditStore
	dir  string   // the test's working directory
	args []string // --data-dir, --store
	ca   *caRun
	root string // root.crt, which the clients trust
}

func newACMERun(t *testing.T, st auditStore) *acmeRun {
	t.Helper()
	dir := t.TempDir()
	r := &acmeRun{st: st, dir: dir, args: st.args(t, filepath.Join(dir, "rotor-data"))}
	r.root = filepath.Join(r.args[1], "root.crt")
	r.ca = serveCA(t, nil, r.root, r.args...)
	return r
}

// directory is the ACME directory URL; the serving certificate names
// localhost.
func (r *acmeRun) directory() string {
	return strings.Replace(r.ca.URL, "127.0.0.1", "localhost", 1) + "/acme/directory"
}

// eab runs `rotor-ca acme eab create` and reads its one line as the
// README's `read KID HMAC` does.
func (r *acmeRun) eab(t *testing.T, id rotor.Identity) (string, string) {
	t.Helper()
	out, errOut, code := rotorCACmd(t, nil, append([]string{"acme", "eab", "create", "--namespace", id.Namespace,
		"--service-account", id.ServiceAccount, "--expires-in", "1h"}, r.args...)...)
	fields := strings.Fields(out)
	if code != 0 || len(fields) != 2 || strings.Count(out, "\n") != 1 || !rotor.ValidEABKeyID(fields[0]) {
		t.Fatalf("acme eab create: exit %d, printed %q: want one line, KID HMAC\n%s", code, out, errOut)
	}
	if mac, err := base64.RawURLEncoding.DecodeString(fields[1]); err != nil || len(mac) != 32 {
		t.Fatalf("HMAC key %q is not 32 bytes of base64url", fields[1])
	}
	if strings.Contains(errOut, fields[1]) {
		t.Fatal("acme eab create logged the HMAC key")
	}
	return fields[0], fields[1]
}

// count runs a query on the store.
func (r *acmeRun) count(t *testing.T, query string) int64 {
	return r.st.count(t, storeURL(r.args), query)
}

// needCLI finds an ACME client's command: absent, the test skips with how
// to install it, or fails in CI, which installs it (.ci/run).
func needCLI(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		testenv.Unavailable(t, name, "apt-get install -y "+name)
	}
	return path
}

// run runs a client with env, and returns its output and whether it
// succeeded.
func (r *acmeRun) run(t *testing.T, env []string, name string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir, cmd.Env = r.dir, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// openssl verifies cert (PEM) against the root with chain as untrusted
// intermediates, as a client certificate, and returns its serial (lower
// hex) as openssl prints it.
func (r *acmeRun) openssl(t *testing.T, cert, chain, dns string) string {
	t.Helper()
	out := string(runIn(t, r.dir, "openssl", "verify", "-CAfile", r.root, "-untrusted", chain, "-purpose", "sslclient", cert))
	if !strings.Contains(out, ": OK") {
		t.Fatalf("openssl verify %s: %s", cert, out)
	}
	san := string(runIn(t, r.dir, "openssl", "x509", "-in", cert, "-noout", "-ext", "subjectAltName"))
	id, _, _ := strings.Cut(dns, ".serviceaccount")
	sa, ns, _ := strings.Cut(id, ".")
	if !strings.Contains(san, "DNS:"+dns) || !strings.Contains(san, "URI:spiffe://cluster.local/ns/"+ns+"/sa/"+sa) {
		t.Fatalf("%s names %s, want %s and its SPIFFE ID", cert, san, dns)
	}
	serial := string(runIn(t, r.dir, "openssl", "x509", "-in", cert, "-noout", "-serial"))
	return strings.ToLower(strings.TrimSpace(strings.TrimPrefix(serial, "serial=")))
}

// audited checks the serial's audit row: an ACME issuance for id.
func (r *acmeRun) audited(t *testing.T, serial string, id rotor.Identity) {
	t.Helper()
	if n := r.count(t, `SELECT count(*) FROM issuances WHERE serial = '`+serial+`' AND authenticator = 'acme'
		AND namespace = '`+id.Namespace+`' AND service_account = '`+id.ServiceAccount+`'
		AND token_subject LIKE 'acme-account:%'`); n != 1 {
		t.Fatalf("%d ACME audit rows for %s of %s, want 1", n, serial, id)
	}
}

// refused checks that id's account was refused another identity's name,
// with a refusal row.
func (r *acmeRun) refused(t *testing.T, id rotor.Identity) {
	t.Helper()
	if n := r.count(t, `SELECT count(*) FROM refusals WHERE authenticator = 'acme' AND reason = 'identity-not-allowed'
		AND namespace = '`+id.Namespace+`' AND service_account = '`+id.ServiceAccount+`'`); n < 1 {
		t.Fatalf("no refusal row for %s's order of another identity's name", id)
	}
}

// renewNow checks that the renewal info of the certificate in file says
// renew now, as a revoked certificate's must.
func (r *acmeRun) renewNow(t *testing.T, file string) {
	t.Helper()
	certs := readCerts(t, filepath.Join(r.dir, file))
	leaf := certs[0]
	id := base64.RawURLEncoding.EncodeToString(leaf.AuthorityKeyId) + "." +
		base64.RawURLEncoding.EncodeToString(leaf.SerialNumber.Bytes())
	code, body := e2etest.HTTPGet(r.ca.URL+"/acme/renewal-info/"+id, r.ca.Roots)
	var info rotor.RenewalInfo
	if err := json.Unmarshal([]byte(body), &info); code != http.StatusOK || err != nil {
		t.Fatalf("renewal info of %s: %d %s", leaf.SerialNumber.Text(16), code, body)
	}
	if time.Now().Before(info.SuggestedWindow.Start) {
		t.Fatalf("renewal window of revoked %s is %+v: not open now", leaf.SerialNumber.Text(16), info.SuggestedWindow)
	}
}

// TestEABCommands runs acme eab create, list and revoke as an operator
// would: bad input is a usage error (exit 2) that changes nothing, list
// shows each key's state and never an HMAC key.
func TestEABCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "rotor-data")
	kid, hmac := (&acmeRun{args: []string{"--data-dir", data}}).eab(t, acmeWebapp)
	list := func() string {
		out, errOut, code := rotorCACmd(t, nil, "acme", "eab", "list", "--data-dir", data)
		if code != 0 || strings.Contains(out, hmac) {
			t.Fatalf("eab list: exit %d, %s%s", code, out, errOut)
		}
		return out
	}
	tests := []struct {
		name  string
		args  []string
		code  int
		state string // kid's state in eab list afterwards
	}{
		{"fail/create-without-identity", []string{"create", "--namespace", "default"}, 2, "active"},
		{"fail/create-negative-expiry", []string{"create", "--namespace", "default", "--service-account", "x", "--expires-in", "-1h"}, 2, "active"},
		{"fail/revoke-without-reason", []string{"revoke", kid}, 2, "active"},
		{"fail/revoke-not-a-kid", []string{"revoke", "token:0123456789ab", "--reason", "x"}, 2, "active"},
		{"fail/revoke-unknown", []string{"revoke", "eab_AAAAAAAAAAAAAAAA", "--reason", "x"}, 1, "active"},
		{"ok/revoke", []string{"revoke", kid, "--reason", "handed to the wrong team"}, 0, "revoked"},
		{"fail/revoke-again", []string{"revoke", kid, "--reason", "again"}, 1, "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := rotorCACmd(t, nil, append(append([]string{"acme", "eab"}, tt.args...), "--data-dir", data)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errOut)
			}
			for _, line := range strings.Split(list(), "\n") {
				if strings.HasPrefix(line, kid) && !strings.HasSuffix(strings.TrimSpace(line), tt.state) {
					t.Fatalf("eab list says %q, want state %s", line, tt.state)
				}
			}
		})
	}
	// The audit names the key, never its HMAC key, which is gone from the
	// store once revoked.
	db := filepath.Join(data, "rotor.db")
	if n := countRows(t, db, `SELECT count(*) FROM admin_actions WHERE target = '`+kid+`'
		AND action IN ('acme.eab.create', 'acme.eab.revoke') AND instr(detail || reason, '`+hmac+`') = 0`); n != 2 {
		t.Fatalf("%d admin actions for %s without its HMAC key, want create and revoke", n, kid)
	}
	if n := countRows(t, db, `SELECT count(*) FROM acme_eab_keys WHERE hmac_key IS NOT NULL`); n != 0 {
		t.Fatalf("%d HMAC keys left after the only key was revoked", n)
	}
}
