package api_test

import (
	"crypto/x509"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/signer"
)

// crlBase is the --crl-url of the tests' CA.
const crlBase = "https://ca.rotor.test/v1/crl"

// TestCRL revokes certificates through the admin API and follows them onto
// the CRL, on both stores: leaves name the CRL, the CRL verifies against the
// issuer (crypto/x509 and openssl), lists each serial with its reason, and
// its number and ETag move with each revocation; conditional requests and
// other issuers' key IDs are answered as the contract says.
func TestCRL(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, be.url(t), envConfig{crlURL: crlBase})
			iss := e.pki.Trust.Issuer
			leaves := []*x509.Certificate{e.issueLeaf(t), e.issueLeaf(t)}
			for _, l := range leaves {
				if want := []string{crlBase + "/" + iss.KeyID}; !slices.Equal(l.CRLDistributionPoints, want) {
					t.Fatalf("leaf names CRL %v, want %v", l.CRLDistributionPoints, want)
				}
			}
			first, rl := e.getCRL(t, "/v1/crl")
			if len(rl.RevokedCertificateEntries) != 0 {
				t.Fatalf("CRL before any revocation lists %d", len(rl.RevokedCertificateEntries))
			}
			steps := []struct {
				name   string
				leaf   *x509.Certificate
				body   string
				reason rotor.RevocationReason
			}{
				{"ok/key-compromise", leaves[0], `{"reason": "keyCompromise", "comment": "laptop stolen"}`, rotor.ReasonKeyCompromise},
				{"ok/unspecified", leaves[1], `{}`, rotor.ReasonUnspecified},
			}
			last, lastRL := first, rl
			for i, s := range steps {
				t.Run(s.name, func(t *testing.T) {
					serial := s.leaf.SerialNumber.Text(16)
					if r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates/" + serial + "/revoke",
						Header: withType(bearer(e.admin), "application/json"), Body: []byte(s.body)}); r.Status != http.StatusOK {
						t.Fatalf("revoke: status %d: %s", r.Status, r.Body)
					}
					revoked := time.Now()
					entryOf := func(rl *x509.RevocationList) int {
						return slices.IndexFunc(rl.RevokedCertificateEntries,
							func(e x509.RevocationListEntry) bool { return e.SerialNumber.Cmp(s.leaf.SerialNumber) == 0 })
					}
					r, got := e.crlUntil(t, func(rl *x509.RevocationList) bool { return entryOf(rl) >= 0 })
					t.Logf("on the CRL %v after the revocation's answer", time.Since(revoked).Round(time.Millisecond))
					if len(got.RevokedCertificateEntries) != i+1 {
						t.Fatalf("%d entries after %d revocations", len(got.RevokedCertificateEntries), i+1)
					}
					if reason := got.RevokedCertificateEntries[entryOf(got)].ReasonCode; reason != int(s.reason) {
						t.Errorf("reason %d, want %d", reason, s.reason)
					}
					if got.Number.Cmp(lastRL.Number) <= 0 || r.Header.Get("ETag") == last.Header.Get("ETag") {
						t.Errorf("CRL %x (ETag %s) after %x (%s): the number and ETag must move", got.Number,
							r.Header.Get("ETag"), lastRL.Number, last.Header.Get("ETag"))
					}
					checkWithOpenSSL(t, r.Body, e.pki, serial, s.reason)
					last, lastRL = r, got
				})
			}

			// Each case is held to the CRL served just before it, not the
			// last step's: a new window may have begun since.
			old := first.Header.Get("ETag")
			cases := []struct {
				name   string
				method string
				path   string
				inm    func(current string) string // If-None-Match; nil: none
				status int
			}{
				{"ok/unchanged", http.MethodGet, "/v1/crl", func(cur string) string { return cur }, http.StatusNotModified},
				{"ok/among-others", http.MethodGet, "/v1/crl", func(cur string) string { return `"x", ` + cur }, http.StatusNotModified},
				{"ok/strong-form", http.MethodGet, "/v1/crl", func(cur string) string { return strings.TrimPrefix(cur, "W/") }, http.StatusNotModified},
				{"ok/older-copy", http.MethodGet, "/v1/crl", func(string) string { return old }, http.StatusOK},
				{"ok/by-key-id", http.MethodGet, "/v1/crl/" + iss.KeyID, nil, http.StatusOK},
				{"ok/by-key-id-upper-case", http.MethodGet, "/v1/crl/" + strings.ToUpper(iss.KeyID), nil, http.StatusOK},
				{"ok/head", http.MethodHead, "/v1/crl", nil, http.StatusOK},
				{"ok/head-by-key-id", http.MethodHead, "/v1/crl/" + iss.KeyID, func(cur string) string { return cur }, http.StatusNotModified},
				{"fail/other-issuer", http.MethodGet, "/v1/crl/" + strings.Repeat("ab", 20), nil, http.StatusNotFound},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					cur, _ := e.getCRL(t, "/v1/crl")
					etag := cur.Header.Get("ETag")
					var h http.Header
					if c.inm != nil {
						h = http.Header{"If-None-Match": {c.inm(etag)}}
					}
					r := e.do(t, call{Method: c.method, Path: c.path, Header: h})
					if r.Status != c.status {
						t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
					}
					switch {
					case c.status == http.StatusNotFound:
						if p := r.problem(t); p.Type != rotor.ENotFound.ProblemType() || !strings.Contains(p.Detail, iss.KeyID) {
							t.Errorf("problem %+v, want not-found naming the current issuer key %s", p, iss.KeyID)
						}
					case r.Header.Get("ETag") != etag || !strings.HasPrefix(etag, `W/"`+iss.KeyID+"-"):
						t.Errorf("ETag %s, want %s, weak, of key %s", r.Header.Get("ETag"), etag, iss.KeyID)
					case c.method == http.MethodHead && len(r.Body) != 0:
						t.Errorf("HEAD answered %d bytes", len(r.Body))
					case c.status == http.StatusOK && c.method == http.MethodGet && string(r.Body) != string(cur.Body):
						t.Errorf("another CRL than the one just served, with its ETag")
					}
				})
			}
		})
	}
}

// issueLeaf gets a certificate for webapp with its token.
func (e *env) issueLeaf(t *testing.T) *x509.Certificate {
	t.Helper()
	key := testpki.Key(t, "ecdsa-p256")
	r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates", Header: withType(bearer(e.token), "application/pkcs10"),
		Body: testpki.CSR(t, key, nil)})
	if r.Status != http.StatusCreated {
		t.Fatalf("issue: status %d: %s", r.Status, r.Body)
	}
	_, leaf := checkIssued(t, e, r.Body, key, webapp)
	return leaf
}

// getCRL fetches the CRL at path, unauthenticated, and holds it to what
// every CRL of the env's CA must be.
func (e *env) getCRL(t *testing.T, path string) (*response, *x509.RevocationList) {
	t.Helper()
	r := e.do(t, call{Method: http.MethodGet, Path: path})
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET %s: status %d, %s: %s", path, r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	rl, err := x509.ParseRevocationList(r.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	iss := e.pki.Trust.Issuer.Certificate
	if err := rl.CheckSignatureFrom(iss); err != nil {
		t.Fatalf("CRL does not verify against the issuer: %v", err)
	}
	now := time.Now()
	if v := rl.NextUpdate.Sub(rl.ThisUpdate); string(rl.AuthorityKeyId) != string(iss.SubjectKeyId) ||
		v <= 0 || v > rotor.DefaultCRLValidity || rl.ThisUpdate.After(now) || !rl.NextUpdate.After(now) {
		t.Fatalf("CRL of key %x valid %v to %v, at %v", rl.AuthorityKeyId, rl.ThisUpdate, rl.NextUpdate, now)
	}
	// The window's start, in seconds, above the highest chain place.
	if n := new(big.Int).Rsh(rl.Number, 64); n.Int64() != rotor.NewCRLWindow(rl.ThisUpdate, rotor.DefaultCRLValidity).Start.Unix() {
		t.Errorf("CRL number %x: window %d, thisUpdate %v", rl.Number, n, rl.ThisUpdate)
	}
	maxAge, err := strconv.Atoi(strings.TrimPrefix(r.Header.Get("Cache-Control"), "max-age="))
	if err != nil || maxAge < 0 || maxAge > 60 || now.Add(time.Duration(maxAge)*time.Second).After(rl.NextUpdate) {
		t.Errorf("Cache-Control %q with nextUpdate %v", r.Header.Get("Cache-Control"), rl.NextUpdate)
	}
	return r, rl
}

// crlUntil fetches the CRL until done says it is the one awaited, or fails
// the test after ten seconds (the CA promises about one).
func (e *env) crlUntil(t *testing.T, done func(*x509.RevocationList) bool) (*response, *x509.RevocationList) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, rl := e.getCRL(t, "/v1/crl")
		if done(rl) {
			return r, rl
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRL %x still served after 10s", rl.Number)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkWithOpenSSL has openssl verify the CRL against the issuer and root,
// and refuse it with one bit of its signature flipped, and read serial's
// entry with its reason.
func checkWithOpenSSL(t *testing.T, der []byte, pki *testpki.PKI, serial string, reason rotor.RevocationReason) {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crlFile := write("crl.der", der)
	chain := write("chain.pem", rotor.EncodeCertificates([]*x509.Certificate{pki.Issuer.Certificate, pki.Root}))
	// The last octet is the signature's: flipped, the CRL still parses.
	tampered := write("tampered.der", append(der[:len(der)-1:len(der)-1], der[len(der)-1]^1))
	out, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", crlFile, "-CAfile", chain, "-noout").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl crl -CAfile issuer+root: %v: %s", err, out)
	}
	// openssl 3.0 says so, but exits 0.
	out, err = exec.Command("openssl", "crl", "-inform", "DER", "-in", tampered, "-CAfile", chain, "-noout").CombinedOutput()
	if !strings.Contains(string(out), "verify failure") || strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl on a CRL with a flipped signature bit: %v: %s", err, out)
	}
	out, err = exec.Command("openssl", "crl", "-inform", "DER", "-in", crlFile, "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl -text: %v: %s", err, out)
	}
	text := string(out)
	i := strings.Index(text, "Serial Number: "+strings.ToUpper(serial))
	if i < 0 {
		t.Fatalf("openssl lists no serial %s:\n%s", serial, text)
	}
	entry := text[i+len("Serial Number: "):]
	entry, _, _ = strings.Cut(entry, "Serial Number:") // the next entry
	entry, _, _ = strings.Cut(entry, "Signature Algorithm")
	want := map[rotor.RevocationReason]string{rotor.ReasonKeyCompromise: "Key Compromise"}[reason]
	if strings.Contains(entry, "CRL Reason Code") != (want != "") || !strings.Contains(entry, want) {
		t.Fatalf("openssl reads serial %s's entry without reason %q:\n%s", serial, want, entry)
	}
}

// TestCRLOutages: a CRL is answered 503 with Retry-After when the store
// cannot say whether it is current, or the key cannot sign it.
func TestCRLOutages(t *testing.T) {
	t.Parallel()
	t.Run("fail/store-unavailable", func(t *testing.T) {
		t.Parallel()
		u, err := url.Parse(testenv.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		proxy := startProxy(t, u.Host)
		u.Host = proxy.addr
		e := newEnv(t, u.String(), envConfig{})
		e.getCRL(t, "/v1/crl")
		proxy.cut()
		// Served from the cache for up to a second; then asked of the store.
		deadline := time.Now().Add(10 * time.Second)
		r := e.do(t, call{Method: http.MethodGet, Path: "/v1/crl"})
		for r.Status == http.StatusOK && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			r = e.do(t, call{Method: http.MethodGet, Path: "/v1/crl"})
		}
		checkOutage(t, r, rotor.EStoreUnavailable)
	})
	t.Run("fail/signer-unavailable", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, sqliteURL(t), envConfig{signTimeout: 20 * time.Millisecond,
			wrapKey: func(k signer.Key) signer.Key { return hangingKey{k} }})
		checkOutage(t, e.do(t, call{Method: http.MethodGet, Path: "/v1/crl"}), rotor.ESignerUnavailable)
	})
}

func checkOutage(t *testing.T, r *response, code rotor.ErrorCode) {
	t.Helper()
	if p := r.problem(t); r.Status != http.StatusServiceUnavailable || p.Type != code.ProblemType() ||
		r.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, type %s, Retry-After %q; want 503 %s with Retry-After", r.Status, p.Type,
			r.Header.Get("Retry-After"), code)
	}
}

// TestCRLNotServed: an API wired without a CRL cache answers both CRL
// paths 404, as the contract allows, rather than failing.
func TestCRLNotServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	h, err := api.New(api.Config{CA: e.ca, Trust: e.trust, Certificates: e.store})
	if err != nil {
		t.Fatal(err)
	}
	srv := startTLS(t, h)
	for _, path := range []string{"/v1/crl", "/v1/crl/" + e.pki.Trust.Issuer.KeyID} {
		r := srv.do(t, call{Method: http.MethodGet, Path: path})
		if p := r.problem(t); r.Status != http.StatusNotFound || p.Type != rotor.ENotFound.ProblemType() {
			t.Errorf("GET %s: status %d, type %s; want 404 not-found", path, r.Status, p.Type)
		}
	}
}
