package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testpki"
)

func TestBundle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	b := e.pki.Trust.Bundle
	etag := `"` + b.Fingerprint + `"`
	cases := []struct {
		name        string
		ifNoneMatch string
		status      int
	}{
		{"ok/full", "", http.StatusOK},
		{"ok/other-etag", `"0000"`, http.StatusOK},
		{"ok/not-modified", etag, http.StatusNotModified},
		{"ok/not-modified-weak-in-list", `"0000", W/` + etag, http.StatusNotModified},
		{"ok/not-modified-star", "*", http.StatusNotModified},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.ifNoneMatch != "" {
				h.Set("If-None-Match", c.ifNoneMatch)
			}
			r := e.do(t, call{Method: http.MethodGet, Path: "/v1/bundle", Header: h})
			if r.Status != c.status || r.Header.Get("ETag") != etag {
				t.Fatalf("status %d ETag %q, want %d %q", r.Status, r.Header.Get("ETag"), c.status, etag)
			}
			if c.status == http.StatusNotModified {
				if len(r.Body) != 0 {
					t.Errorf("304 with a body")
				}
				return
			}
			roots, err := rotor.ParseCertificates(r.Body)
			if err != nil || len(roots) != 1 || !roots[0].Equal(b.Roots[0]) {
				t.Errorf("bundle body: %d roots, %v", len(roots), err)
			}
			if !strings.Contains(r.Header.Get("Cache-Control"), "max-age=") {
				t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
			}
		})
	}
}

// TestBundleRotation adds a root while agents hold the old bundle: their
// If-None-Match no longer matches, so they get both roots and a new ETag.
func TestBundleRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	oldETag := `"` + e.pki.Trust.Bundle.Fingerprint + `"`
	next := testpki.New(t, testpki.Options{Name: "Other"})
	both, err := rotor.NewBundle(append(e.pki.Trust.Bundle.Roots, next.Trust.Bundle.Roots...))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := rotor.NewTrust(e.pki.Trust.Issuer, both, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.trust.Set(rotated)
	r := e.do(t, call{Method: http.MethodGet, Path: "/v1/bundle", Header: http.Header{"If-None-Match": {oldETag}}})
	roots, err := rotor.ParseCertificates(r.Body)
	if r.Status != http.StatusOK || err != nil || len(roots) != 2 || r.Header.Get("ETag") != `"`+both.Fingerprint+`"` {
		t.Errorf("status %d, %d roots (%v), ETag %q", r.Status, len(roots), err, r.Header.Get("ETag"))
	}
}

func TestHealthAndDocs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	for _, path := range []string{"/healthz", "/readyz", "/openapi.yaml", "/metrics"} {
		r := e.do(t, call{Method: http.MethodGet, Path: path})
		if r.Status != http.StatusOK {
			t.Errorf("%s: status %d: %s", path, r.Status, r.Body)
		}
		if path == "/openapi.yaml" && !bytes.Equal(r.Body, rotor.OpenAPI) {
			t.Errorf("/openapi.yaml is not the embedded contract")
		}
	}
}

// TestReady fails readiness for real: a closed store, a signer check that
// outlives the deadline, and one that fails without a code.
func TestReady(t *testing.T) {
	t.Parallel()
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	cases := []struct {
		name  string
		ready func(e *env) []api.ReadyCheck
		code  rotor.ErrorCode
	}{
		{"fail/store-closed", func(e *env) []api.ReadyCheck {
			_ = e.store.Close()
			return nil
		}, rotor.EStoreUnavailable},
		{"fail/signer-hangs", func(*env) []api.ReadyCheck {
			return []api.ReadyCheck{{Name: "signer", Check: hang, Code: rotor.ESignerUnavailable}}
		}, rotor.ESignerUnavailable},
		{"fail/uncoded-error", func(*env) []api.ReadyCheck {
			return []api.ReadyCheck{{Name: "kms", Check: func(context.Context) error { return errors.New("no route") },
				Code: rotor.EAuthUnavailable}}
		}, rotor.EAuthUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, sqliteURL(t), envConfig{readyTO: 50 * time.Millisecond, ready: c.ready})
			r := e.do(t, call{Method: http.MethodGet, Path: "/readyz"})
			if p := r.problem(t); r.Status != http.StatusServiceUnavailable || rotor.CodeFromProblemType(p.Type) != c.code {
				t.Errorf("status %d type %s, want 503 %s", r.Status, p.Type, c.code)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	trust := e.trust
	cases := []struct {
		name string
		cfg  api.Config
	}{
		{"fail/no-ca", api.Config{Trust: trust, Certificates: e.store}},
		{"fail/ready-check-code", api.Config{CA: e.ca, Trust: trust, Certificates: e.store,
			Ready: []api.ReadyCheck{{Name: "x", Check: func(context.Context) error { return nil }, Code: rotor.EInvalid}}}},
	}
	for _, c := range cases {
		if _, err := api.New(c.cfg); err == nil {
			t.Errorf("%s: New accepted the config", c.name)
		}
	}
}

// TestUnknownRoutes answers paths and methods the contract lacks with
// problems too.
func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	cases := []struct {
		method, path string
		status       int
		allow        string
		documented   string // the contract's components.responses entry
	}{
		{http.MethodGet, "/v1/nothing", http.StatusNotFound, "", "NotFound"},
		{http.MethodDelete, "/v1/bundle", http.StatusMethodNotAllowed, "GET", "MethodNotAllowed"},
		{http.MethodDelete, "/v1/certificates", http.StatusMethodNotAllowed, "GET, POST", "MethodNotAllowed"},
	}
	for _, c := range cases {
		r := e.do(t, call{Method: c.method, Path: c.path, Invalid: true})
		r.problem(t)
		if r.Status != c.status || r.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: status %d Allow %q", c.method, c.path, r.Status, r.Header.Get("Allow"))
		}
		// No operation of the contract matches these, so the contract
		// test cannot check them: check them against the response the
		// contract documents for every path instead.
		doc := contractDoc.Components.Responses[c.documented].Value
		for name, h := range doc.Headers {
			if h.Value.Required && r.Header.Get(name) == "" {
				t.Errorf("%s %s: no %s header, which %s requires", c.method, c.path, name, c.documented)
			}
		}
		var body any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		if err := doc.Content.Get(r.Header.Get("Content-Type")).Schema.Value.VisitJSON(body); err != nil {
			t.Errorf("%s %s: not the documented %s: %v", c.method, c.path, c.documented, err)
		}
	}
}

// metricValue reads one counter or histogram count from the registry, 0
// if there is no such series.
func metricValue(t testing.TB, m *api.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := metricSeries(t, m, name, labels)
	return v
}

// metricSeries is the first series of name whose labels include labels,
// and whether there is one.
func metricSeries(t testing.TB, m *api.Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return sampleValue(metric), true
		}
	}
	return 0, false
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// TestRequestLog logs each request at DEBUG with method, path, status and
// duration, and never the bearer token, whether it is accepted or not.
func TestRequestLog(t *testing.T) {
	t.Parallel()
	logs := &e2etest.JSONLog{}
	e := newEnv(t, sqliteURL(t), envConfig{logs: logs})
	bad := rotor.TokenPrefix + "notarealtoken0000000000000000000000000000000"
	for _, token := range []string{e.token, bad} {
		e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates",
			Header: withType(bearer(token), "application/pkcs10"), Body: testpki.CSR(t, testpki.Key(t, "ecdsa-p256"), nil)})
	}
	var requests int
	for _, rec := range logs.Events(api.EventRequest) {
		if rec["method"] == "POST" && rec["path"] == "/v1/certificates" && rec["status"] != nil && rec["duration"] != nil {
			requests++
		}
	}
	if requests != 2 {
		t.Errorf("%d request lines, want 2:\n%s", requests, logs)
	}
	if strings.Contains(logs.String(), e.token) || strings.Contains(logs.String(), bad) {
		t.Errorf("a token reached the log:\n%s", logs)
	}
}
