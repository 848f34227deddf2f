package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/rotor-dev/rotor"
)

// problemSchema is the contract's rotor.Problem schema.
func problemSchema(t *testing.T) *openapi3.Schema {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(rotor.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas["Problem"].Value
}

// TestProblemTable answers every error code through the one table and
// checks status, type, title, headers and the rotor.Problem schema.
func TestProblemTable(t *testing.T) {
	t.Parallel()
	schema := problemSchema(t)
	want := map[rotor.ErrorCode]int{
		rotor.EInvalid: 400, rotor.EBadCSR: 400, rotor.EUnauthenticated: 401, rotor.EForbidden: 403, rotor.EDenied: 403,
		rotor.EConflict: 409,
		rotor.ENotFound: 404, rotor.EMethodNotAllowed: 405, rotor.ETooLarge: 413, rotor.EUnsupportedMedia: 415,
		rotor.ERateLimited: 429, rotor.EOverloaded: 503, rotor.EStoreUnavailable: 503, rotor.ESignerUnavailable: 503,
		rotor.EAuthUnavailable: 503, rotor.EInternal: 500,
		// Client-side codes never go on the wire: a server that meets one
		// answers internal.
		rotor.ECAUnreachable: 500, rotor.ECAUntrusted: 500,
	}
	for _, code := range rotor.ErrorCodes {
		t.Run(string(code), func(t *testing.T) {
			t.Parallel()
			status, ok := want[code]
			if !ok {
				t.Fatalf("code %s has no expected status in this test", code)
			}
			sent := code
			if code.HTTPStatus() == 0 {
				sent = rotor.EInternal
			}
			rec := httptest.NewRecorder()
			p := problemWriter{log: slog.New(slog.DiscardHandler)}
			p.write(rec, httptest.NewRequest(http.MethodGet, "/x", nil), rotor.Errorf(code, "detail for %s", code))
			if rec.Code != status {
				t.Errorf("status %d, want %d", rec.Code, status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("content type %q", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if err := schema.VisitJSON(body); err != nil {
				t.Errorf("not a rotor.Problem: %v", err)
			}
			if body["type"] != sent.ProblemType() || body["status"] != float64(status) ||
				body["detail"] != "detail for "+string(code) || body["title"] == "" {
				t.Errorf("body %v", body)
			}
			if got := rotor.CodeFromProblemType(body["type"].(string)); got != sent {
				t.Errorf("type maps back to %s", got)
			}
			// Limits and outages pass, so they say when to come back.
			wantRetry := sent == rotor.ERateLimited || status == http.StatusServiceUnavailable
			retry := rec.Header().Get("Retry-After")
			n, err := strconv.Atoi(retry)
			if wantRetry && (err != nil || n <= 0) || !wantRetry && retry != "" {
				t.Errorf("Retry-After %q", retry)
			}
			auth := rec.Header().Get("WWW-Authenticate")
			if (sent == rotor.EUnauthenticated) != strings.HasPrefix(auth, "Bearer") {
				t.Errorf("WWW-Authenticate %q", auth)
			}
		})
	}
}

// TestProblemHidesInternalCause answers an uncoded error generically and
// logs its cause under the problem's instance.
func TestProblemHidesInternalCause(t *testing.T) {
	t.Parallel()
	var logged bytes.Buffer
	p := problemWriter{log: slog.New(slog.NewJSONHandler(&logged, nil))}
	rec := httptest.NewRecorder()
	cause := errors.New("dial tcp 10.1.2.3:5432: password authentication failed for user rotor")
	p.write(rec, httptest.NewRequest(http.MethodPost, "/v1/certificates", nil), cause)
	var prob rotor.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &prob); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 500 || prob.Type != rotor.EInternal.ProblemType() || strings.Contains(rec.Body.String(), "10.1.2.3") {
		t.Errorf("status %d body %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logged.String(), "10.1.2.3") || !strings.Contains(logged.String(), prob.Instance) {
		t.Errorf("the log lacks the cause or the instance: %s", logged.String())
	}
}

// TestProblemLogLevel: an outage is logged at ERROR, but shedding at the
// in-flight cap, which a storm does tens of thousands of times by design,
// and refusals are logged at DEBUG.
func TestProblemLogLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code rotor.ErrorCode
		want slog.Level
	}{
		{rotor.EStoreUnavailable, slog.LevelError},
		{rotor.EInternal, slog.LevelError},
		{rotor.EOverloaded, slog.LevelDebug},
		{rotor.ERateLimited, slog.LevelDebug},
		{rotor.EUnauthenticated, slog.LevelDebug},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			t.Parallel()
			var logged bytes.Buffer
			p := problemWriter{log: slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			p.write(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/certificates", nil),
				rotor.Errorf(tt.code, "test"))
			var line struct{ Level slog.Level }
			if err := json.Unmarshal(logged.Bytes(), &line); err != nil || line.Level != tt.want {
				t.Errorf("logged %s (%v), want one line at %v", logged.String(), err, tt.want)
			}
		})
	}
}

// TestRecoverPanic answers a panicking handler with a 500 problem.
func TestRecoverPanic(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	s := &server{log: log, problem: problemWriter{log: log}}
	h := s.recoverPanic(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/", nil))
	var prob rotor.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &prob); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != 500 || prob.Type != rotor.EInternal.ProblemType() || strings.Contains(prob.Detail, "boom") {
		t.Errorf("status %d problem %+v", rec.Code, prob)
	}
}
