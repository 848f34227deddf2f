package client_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

var webapp = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}

func newCSR(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := client.NewCSR(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newClient(t testing.TB, ca *catest.CA) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{URL: ca.URL, Roots: ca.Roots, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// issue gets a certificate with a token and returns it as a key pair.
func issue(t testing.TB, c *client.Client, token string) (*client.Issued, *tls.Certificate) {
	t.Helper()
	key := catest.NewKey(t)
	got, err := c.Issue(context.Background(), client.IssueRequest{CSR: newCSR(t, key), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: got.Leaf}
	for _, x := range append([]*x509.Certificate{got.Leaf}, got.Chain...) {
		cert.Certificate = append(cert.Certificate, x.Raw)
	}
	return got, cert
}

func TestIssue(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{TTL: time.Hour, MaxTTL: 2 * time.Hour})
	c := newClient(t, ca)
	token := ca.Token(t, webapp)
	_, current := issue(t, c, token)
	otherKey := catest.NewKey(t)
	otherCSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		URIs: []*url.URL{{Scheme: "spiffe", Host: catest.TrustDomain, Path: "/ns/default/sa/admin"}}}, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		req       func(key crypto.Signer) client.IssueRequest
		wantCode  rotor.ErrorCode
		wantTTL   time.Duration
		wantRetry bool
	}{
		{name: "ok/token", req: func(k crypto.Signer) client.IssueRequest {
			return client.IssueRequest{CSR: newCSR(t, k), Token: token}
		}, wantTTL: time.Hour},
		{name: "ok/ttl", req: func(k crypto.Signer) client.IssueRequest {
			return client.IssueRequest{CSR: newCSR(t, k), Token: token, TTL: 90 * time.Second}
		}, wantTTL: 90 * time.Second},
		{name: "ok/mtls-renewal", req: func(k crypto.Signer) client.IssueRequest {
			return client.IssueRequest{CSR: newCSR(t, k), ClientCertificate: current,
				BundleFingerprint: ca.Bundle.Fingerprint}
		}, wantTTL: time.Hour},
		{name: "fail/unknown-token", req: func(k crypto.Signer) client.IssueRequest {
			return client.IssueRequest{CSR: newCSR(t, k), Token: rotor.TokenPrefix + "nope"}
		}, wantCode: rotor.EUnauthenticated},
		{name: "fail/no-credentials", req: func(k crypto.Signer) client.IssueRequest {
			return client.IssueRequest{CSR: newCSR(t, k)}
		}, wantCode: rotor.EUnauthenticated},
		{name: "fail/ttl-over-max", req: func(k crypto.Signer) client.IssueRequest {
			return client.IssueRequest{CSR: newCSR(t, k), Token: token, TTL: 3 * time.Hour}
		}, wantCode: rotor.EInvalid},
		{name: "fail/san-for-other-identity", req: func(crypto.Signer) client.IssueRequest {
			return client.IssueRequest{CSR: otherCSR, Token: token}
		}, wantCode: rotor.EForbidden},
		{name: "fail/bad-csr", req: func(crypto.Signer) client.IssueRequest {
			return client.IssueRequest{CSR: []byte("not a csr"), Token: token}
		}, wantCode: rotor.EBadCSR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := catest.NewKey(t)
			got, err := c.Issue(context.Background(), tt.req(key))
			if code := rotor.ErrorCodeOf(err); code != tt.wantCode {
				t.Fatalf("error code %q (%v), want %q", code, err, tt.wantCode)
			}
			if tt.wantCode != "" {
				if rotor.ErrorCodeOf(err).Retryable() {
					t.Errorf("refusal %v is retryable", err)
				}
				return
			}
			if !got.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
				t.Error("certificate is not for the CSR's key")
			}
			if l := got.NotAfter.Sub(got.Leaf.NotBefore); l < tt.wantTTL || l > tt.wantTTL+time.Minute {
				t.Errorf("lifetime %v, want %v", l, tt.wantTTL)
			}
			_, id, err := client.LeafIdentity(got.Leaf)
			if err != nil || id != webapp {
				t.Errorf("identity %v, %v; want %v", id, err, webapp)
			}
			if !got.RenewAfter.After(got.NotBefore) || !got.RenewAfter.Before(got.NotAfter) {
				t.Errorf("renew_after %v outside the lifetime", got.RenewAfter)
			}
			chain, err := rotor.ParseCertificates(got.PEM)
			if err != nil || len(chain) != 2 || !chain[0].Equal(got.Leaf) {
				t.Errorf("PEM holds %d certificates (%v), want leaf then issuer", len(chain), err)
			}
		})
	}
}

func TestIssueWhileDown(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	c := newClient(t, ca)
	token := ca.Token(t, webapp)
	tests := []struct {
		name       string
		mode       catest.Mode
		wantCode   rotor.ErrorCode
		wantRetry  time.Duration
		wantStatus int
	}{
		{name: "fail/unavailable", mode: catest.Unavailable, wantCode: rotor.EStoreUnavailable,
			wantRetry: time.Second, wantStatus: 503},
		{name: "fail/unreachable", mode: catest.Unreachable, wantCode: rotor.ECAUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca.SetMode(tt.mode)
			defer ca.SetMode(catest.Up)
			_, err := c.Issue(context.Background(), client.IssueRequest{CSR: newCSR(t, catest.NewKey(t)), Token: token})
			if code := rotor.ErrorCodeOf(err); code != tt.wantCode || !code.Retryable() {
				t.Fatalf("error %v: code %q, want retryable %q", err, code, tt.wantCode)
			}
			var te *client.TransportError
			if (tt.wantCode == rotor.ECAUnreachable) != errors.As(err, &te) {
				t.Errorf("transport error %v in %v", te, err)
			}
			if got := client.RetryAfter(err); got != tt.wantRetry {
				t.Errorf("retry after %v, want %v", got, tt.wantRetry)
			}
			var p *client.Problem
			if tt.wantStatus != 0 && (!errors.As(err, &p) || p.Status != tt.wantStatus) {
				t.Errorf("problem %+v, want status %d", p, tt.wantStatus)
			}
		})
	}
}

// TestIssueUntrusted: a CA whose serving certificate the client's roots do
// not verify is ECAUntrusted, which retrying the same way cannot fix.
func TestIssueUntrusted(t *testing.T) {
	t.Parallel()
	ca, other := catest.New(t, catest.Options{}), catest.New(t, catest.Options{})
	c, err := client.New(client.Config{URL: ca.URL, Roots: other.Roots})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Issue(context.Background(), client.IssueRequest{CSR: newCSR(t, catest.NewKey(t)), Token: ca.Token(t, webapp)})
	if code := rotor.ErrorCodeOf(err); code != rotor.ECAUntrusted || code.Retryable() {
		t.Fatalf("error %v: code %q, want %q, not retryable", err, code, rotor.ECAUntrusted)
	}
}

// TestResponseWithoutProblem: answers from something other than Rotor (a
// proxy's page) are coded from their status alone.
func TestResponseWithoutProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		wantCode rotor.ErrorCode
	}{
		{name: "fail/bad-gateway", status: http.StatusBadGateway, wantCode: rotor.ECAUnreachable},
		{name: "fail/server-error", status: http.StatusInternalServerError, wantCode: rotor.EInternal},
		{name: "fail/too-many-requests", status: http.StatusTooManyRequests, wantCode: rotor.ERateLimited},
		{name: "fail/forbidden", status: http.StatusForbidden, wantCode: rotor.EForbidden},
		{name: "fail/teapot", status: http.StatusTeapot, wantCode: rotor.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := answered(t, tt.status, http.Header{"Content-Type": {"text/html"}}, "<html>proxy says no</html>")
			if code := rotor.ErrorCodeOf(err); code != tt.wantCode {
				t.Errorf("code %q (%v), want %q", code, err, tt.wantCode)
			}
		})
	}
}

// answered is the error the client makes of a server's answer with the
// given status, header and body to a bundle request.
func answered(t *testing.T, status int, header http.Header, body string) error {
	t.Helper()
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer ts.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	c, err := client.New(client.Config{URL: ts.URL, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	_, err = c.Bundle(context.Background(), nil)
	return err
}

// TestRetryAfterHeader: Retry-After in seconds is read from a 429 or 503,
// from the CA or from a proxy in front of it, however long it is; a form
// the client does not read (an HTTP date, garbage) gives zero, leaving the
// caller's backoff in charge.
func TestRetryAfterHeader(t *testing.T) {
	t.Parallel()
	limited := `{"type":"` + rotor.ERateLimited.ProblemType() + `","status":429,"detail":"slow down"}`
	tests := []struct {
		name       string
		status     int
		retryAfter string
		body       string
		wantCode   rotor.ErrorCode
		want       time.Duration
	}{
		{name: "ok/rate-limited", status: 429, retryAfter: "7", body: limited, wantCode: rotor.ERateLimited, want: 7 * time.Second},
		{name: "ok/proxy-429", status: 429, retryAfter: "2", wantCode: rotor.ERateLimited, want: 2 * time.Second},
		{name: "ok/unavailable-long", status: 503, retryAfter: "600", wantCode: rotor.ECAUnreachable, want: 10 * time.Minute},
		{name: "ok/spaces", status: 503, retryAfter: " 3 ", wantCode: rotor.ECAUnreachable, want: 3 * time.Second},
		{name: "fail/none", status: 503, wantCode: rotor.ECAUnreachable},
		{name: "fail/http-date", status: 503, retryAfter: "Fri, 31 Dec 2027 23:59:59 GMT", wantCode: rotor.ECAUnreachable},
		{name: "fail/negative", status: 429, retryAfter: "-5", wantCode: rotor.ERateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			header := http.Header{"Content-Type": {rotor.MediaProblem}}
			if tt.retryAfter != "" {
				header.Set("Retry-After", tt.retryAfter)
			}
			err := answered(t, tt.status, header, tt.body)
			if code := rotor.ErrorCodeOf(err); code != tt.wantCode || !code.Retryable() {
				t.Errorf("code %q (%v), want retryable %q", code, err, tt.wantCode)
			}
			if got := client.RetryAfter(err); got != tt.want {
				t.Errorf("RetryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCertificate(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	c := newClient(t, ca)
	token, admin := ca.Token(t, webapp), ca.AdminToken(t)
	issued, _ := issue(t, c, token)
	tests := []struct {
		name     string
		serial   string
		token    string
		wantCode rotor.ErrorCode
	}{
		{name: "ok/issued", serial: issued.Serial, token: token},
		{name: "ok/as-admin", serial: issued.Serial, token: admin},
		{name: "fail/unknown", serial: strings.Repeat("ab", 20), token: token, wantCode: rotor.EForbidden},
		{name: "fail/unknown-as-admin", serial: strings.Repeat("ab", 20), token: admin, wantCode: rotor.ENotFound},
		{name: "fail/other-identity", serial: issued.Serial, token: ca.Token(t, rotor.Identity{Namespace: "x", ServiceAccount: "y"}),
			wantCode: rotor.EForbidden},
		{name: "fail/unauthenticated", serial: issued.Serial, wantCode: rotor.EUnauthenticated},
		{name: "fail/not-hex", serial: "XYZ", token: token, wantCode: rotor.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := c.Certificate(context.Background(), tt.serial, client.Credentials{Token: tt.token})
			if code := rotor.ErrorCodeOf(err); code != tt.wantCode {
				t.Fatalf("code %q (%v), want %q", code, err, tt.wantCode)
			}
			if err != nil {
				return
			}
			if rec.Identity != webapp || rec.Authenticator != "token" || rec.Serial != issued.Serial ||
				!rec.NotAfter.Equal(issued.NotAfter) || !rec.RenewAfter().Equal(issued.RenewAfter) {
				t.Errorf("record %+v does not describe the issued certificate %+v", rec, issued)
			}
			if leaf, err := x509.ParseCertificate(rec.Certificate); err != nil || !leaf.Equal(issued.Leaf) {
				t.Errorf("record certificate differs from the issued one (%v)", err)
			}
		})
	}
}
