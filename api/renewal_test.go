package api_test

import (
	"cmp"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// TestRenewalInfo asks each real store's CA for the renewal window of
// certificates in every state, without credentials, each answer held to
// openapi.yaml: normal (from renew_after to halfway through the rest),
// revoked (open since the revocation), issued by an issuer key the CA no
// longer signs with (open now, over ten minutes), and the refusals, which
// leave no audit row. rotor.SuggestRenewal's own table has the edge cases.
func TestRenewalInfo(t *testing.T) {
	t.Parallel()
	type cert struct {
		serial    string
		issued    *rotor.IssuedCertificate
		revokedAt time.Time // zero: not revoked
		asked     time.Time // just before the request
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			storeURL := b.url(t)
			e := newEnv(t, storeURL, envConfig{})
			issued := func(t *testing.T) cert {
				out := issueByToken(t, e)
				return cert{serial: out.Serial, issued: out}
			}
			tests := []struct {
				name    string
				method  string // "" is GET
				cert    func(t *testing.T) cert
				invalid bool // the serial breaks the contract's pattern
				status  int
				code    rotor.ErrorCode
				check   func(t *testing.T, c cert, w rotor.RenewalWindow)
			}{
				{name: "ok/normal", cert: issued, status: http.StatusOK, check: func(t *testing.T, c cert, w rotor.RenewalWindow) {
					end := w.Start.Add(c.issued.NotAfter.Sub(w.Start) / 2).Truncate(time.Second)
					if !w.Start.Equal(c.issued.RenewAfter) || !w.End.Equal(end) || w.Open(time.Now()) {
						t.Errorf("window [%v, %v], want [renew_after %v, %v], not yet open", w.Start, w.End, c.issued.RenewAfter, end)
					}
				}},
				{name: "ok/head", method: http.MethodHead, cert: issued, status: http.StatusOK},
				{name: "ok/revoked", cert: func(t *testing.T) cert {
					c := issued(t)
					c.revokedAt = revokeByAdmin(t, e, c.serial)
					return c
				}, status: http.StatusOK, check: func(t *testing.T, c cert, w rotor.RenewalWindow) {
					start := c.revokedAt.Truncate(time.Second)
					if !w.Start.Equal(start) || !w.End.Equal(start.Add(time.Second)) || !w.Open(time.Now()) {
						t.Errorf("window [%v, %v], want [%v, +1s], open: revoked at %v", w.Start, w.End, start, c.revokedAt)
					}
				}},
				{name: "ok/other-issuer", cert: func(t *testing.T) cert {
					c := issued(t)
					e.trust.Set(testpki.New(t, testpki.Options{Name: "Rotor Next"}).Trust) // the issuer rotated
					t.Cleanup(func() { e.trust.Set(e.pki.Trust) })
					return c
				}, status: http.StatusOK, check: func(t *testing.T, c cert, w rotor.RenewalWindow) {
					if w.Start.Before(c.asked.Truncate(time.Second)) || !w.Open(time.Now()) || w.End.Sub(w.Start) != rotor.OtherIssuerSpread {
						t.Errorf("window [%v, %v], want open from about %v for %v", w.Start, w.End, c.asked, rotor.OtherIssuerSpread)
					}
				}},
				{name: "fail/unknown-serial", cert: func(*testing.T) cert { return cert{serial: strings.Repeat("AB", 20)} },
					status: http.StatusNotFound, code: rotor.ENotFound},
				{name: "fail/serial-not-hex", cert: func(*testing.T) cert { return cert{serial: "xyz"} }, invalid: true,
					status: http.StatusBadRequest, code: rotor.EInvalid},
				{name: "fail/serial-too-long", cert: func(*testing.T) cert { return cert{serial: strings.Repeat("a", 41)} }, invalid: true,
					status: http.StatusBadRequest, code: rotor.EInvalid},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c := tt.cert(t)
					c.asked = time.Now()
					r := e.do(t, call{Method: cmp.Or(tt.method, http.MethodGet), Path: "/v1/renewal-info/" + c.serial, Invalid: tt.invalid})
					if r.Status != tt.status {
						t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
					}
					if tt.code != "" {
						if p := r.problem(t); rotor.CodeFromProblemType(p.Type) != tt.code {
							t.Errorf("problem type %s, want code %s", p.Type, tt.code)
						}
						return
					}
					if ra := r.Header.Get("Retry-After"); ra != "300" {
						t.Errorf("Retry-After %q, want 300 (the default five minutes)", ra)
					}
					if tt.method == http.MethodHead {
						if len(r.Body) != 0 {
							t.Errorf("HEAD answered %d body bytes", len(r.Body))
						}
						return
					}
					var info rotor.RenewalInfo
					if err := json.Unmarshal(r.Body, &info); err != nil {
						t.Fatalf("decode %s: %v", r.Body, err)
					}
					tt.check(t, c, info.SuggestedWindow)
				})
			}
			if n := countRows(t, storeURL, "SELECT count(*) FROM refusals"); n != 0 {
				t.Errorf("%d refusal rows, want none: renewal-info records no refusals", n)
			}
		})
	}
}

// issueByToken gets webapp a certificate with the env's token.
func issueByToken(t testing.TB, e *env) *rotor.IssuedCertificate {
	t.Helper()
	key := testpki.Key(t, "ecdsa-p256")
	r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates",
		Header: withType(bearer(e.token), rotor.MediaPKCS10), Body: testpki.CSR(t, key, nil)})
	if r.Status != http.StatusCreated {
		t.Fatalf("issue: status %d: %s", r.Status, r.Body)
	}
	out, _ := checkIssued(t, e, r.Body, key, webapp)
	return out
}

// revokeByAdmin revokes serial with the env's admin token and returns when.
func revokeByAdmin(t testing.TB, e *env, serial string) time.Time {
	t.Helper()
	r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates/" + serial + "/revoke",
		Header: withType(bearer(e.admin), rotor.MediaJSON), Body: []byte(`{"reason": "keyCompromise"}`)})
	var out rotor.RevokeResult
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &out) != nil {
		t.Fatalf("revoke %s: status %d: %s", serial, r.Status, r.Body)
	}
	return out.RevokedAt
}
