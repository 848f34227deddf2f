package api_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// fetchSPIFFEBundle fetches /v1/spiffe-bundle with go-spiffe's federation
// client, as another trust domain would, and once more through the
// contract checker.
func fetchSPIFFEBundle(t *testing.T, e *env) *spiffebundle.Bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	td := spiffeid.RequireTrustDomainFromString("rotor.test")
	// Fetched by IP, without SNI, so httptest's own certificate answers.
	roots := x509.NewCertPool()
	roots.AddCert(e.Certificate())
	b, err := federation.FetchBundle(ctx, td, e.URL+"/v1/spiffe-bundle", federation.WithWebPKIRoots(roots))
	if err != nil {
		t.Fatalf("federation.FetchBundle: %v", err)
	}
	if r := e.do(t, call{Method: http.MethodGet, Path: "/v1/spiffe-bundle"}); r.Status != http.StatusOK {
		t.Fatalf("GET /v1/spiffe-bundle: status %d: %s", r.Status, r.Body)
	}
	return b
}

// sameRoots reports whether a fetched bundle's X.509 authorities are
// exactly want.
func sameRoots(b *spiffebundle.Bundle, want ...*x509.Certificate) bool {
	got := b.X509Authorities()
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !b.HasX509Authority(w) {
			return false
		}
	}
	return true
}

// TestSPIFFEBundleRotation: go-spiffe's federation package fetches and
// parses the bundle through a root rotation (A, A+B, B); the sequence grows
// at each change and the refresh hint is five minutes. A second CA
// (another replica) serving the same roots answers the same sequence and
// body.
func TestSPIFFEBundleRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	a := e.pki.Trust
	// Root B is made later than A, as rotor-ca init makes it when the
	// rotation begins: X.509 times count seconds.
	b := testpki.New(t, testpki.Options{Name: "B", Now: time.Now().Add(2 * time.Second)})
	both, err := rotor.NewBundle([]*x509.Certificate{a.Bundle.Roots[0], b.Root})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		trust *rotor.Trust
		roots []*x509.Certificate
	}{
		{"A", a, []*x509.Certificate{a.Bundle.Roots[0]}},
		{"A+B", &rotor.Trust{Issuer: a.Issuer, Bundle: both}, both.Roots},
		{"B", b.Trust, []*x509.Certificate{b.Root}},
	}
	var prev uint64
	for i, s := range steps {
		e.trust.Set(s.trust)
		got := fetchSPIFFEBundle(t, e)
		if !sameRoots(got, s.roots...) {
			t.Errorf("%s: authorities %d, want the %d roots of the step", s.name, len(got.X509Authorities()), len(s.roots))
		}
		seq, ok := got.SequenceNumber()
		if !ok || (i > 0 && seq <= prev) {
			t.Errorf("%s: sequence %d (set: %v), want above %d", s.name, seq, ok, prev)
		}
		prev = seq
		if hint, ok := got.RefreshHint(); !ok || hint != 5*time.Minute {
			t.Errorf("%s: refresh hint %v (set: %v), want 5m", s.name, hint, ok)
		}
	}

	replica := newEnv(t, sqliteURL(t), envConfig{})
	replica.trust.Set(b.Trust)
	one := e.do(t, call{Method: http.MethodGet, Path: "/v1/spiffe-bundle"})
	other := replica.do(t, call{Method: http.MethodGet, Path: "/v1/spiffe-bundle"})
	if string(one.Body) != string(other.Body) || one.Header.Get("ETag") != other.Header.Get("ETag") {
		t.Errorf("two replicas serving the same roots answer differently:\n%s\n%s", one.Body, other.Body)
	}
	var doc struct {
		Sequence uint64 `json:"spiffe_sequence"`
	}
	if err := json.Unmarshal(one.Body, &doc); err != nil || doc.Sequence != b.Trust.Bundle.Sequence() {
		t.Errorf("spiffe_sequence %d (%v), want rotor.Bundle.Sequence %d", doc.Sequence, err, b.Trust.Bundle.Sequence())
	}
}

// TestSPIFFEBundleKeyTypes: roots of every key type the CA makes are
// served as x509-svid keys that go-spiffe parses back to the same root.
func TestSPIFFEBundleKeyTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	for _, kt := range []rotor.KeyType{rotor.ECDSAP256, rotor.ECDSAP384, rotor.Ed25519, rotor.RSA2048} {
		t.Run("ok/"+string(kt), func(t *testing.T) {
			p := testpki.New(t, testpki.Options{Name: string(kt), KeyType: kt})
			e.trust.Set(p.Trust)
			if got := fetchSPIFFEBundle(t, e); !sameRoots(got, p.Root) {
				t.Errorf("authorities %d, want the %s root", len(got.X509Authorities()), kt)
			}
		})
	}
}

// TestSPIFFEBundleConditional: the ETag is the bundle's fingerprint, a
// matching If-None-Match is 304 without a body, and HEAD has the headers.
func TestSPIFFEBundleConditional(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	etag := `"` + e.pki.Trust.Bundle.Fingerprint + `"`
	tests := []struct {
		name        string
		method      string
		ifNoneMatch string
		status      int
	}{
		{"ok/get", http.MethodGet, "", http.StatusOK},
		{"ok/other-etag", http.MethodGet, `"0000"`, http.StatusOK},
		{"ok/not-modified", http.MethodGet, etag, http.StatusNotModified},
		{"ok/head", http.MethodHead, "", http.StatusOK},
		{"ok/head-not-modified", http.MethodHead, etag, http.StatusNotModified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.ifNoneMatch != "" {
				h.Set("If-None-Match", tt.ifNoneMatch)
			}
			r := e.do(t, call{Method: tt.method, Path: "/v1/spiffe-bundle", Header: h})
			if r.Status != tt.status || r.Header.Get("ETag") != etag || r.Header.Get("Cache-Control") == "" {
				t.Errorf("status %d ETag %q Cache-Control %q, want %d %q", r.Status, r.Header.Get("ETag"),
					r.Header.Get("Cache-Control"), tt.status, etag)
			}
			if (len(r.Body) > 0) != (tt.status == http.StatusOK && tt.method == http.MethodGet) {
				t.Errorf("body of %d bytes", len(r.Body))
			}
		})
	}
}
