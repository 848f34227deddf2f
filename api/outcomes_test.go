package api_test

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/signer"
)

// failingReader is randomness that has run out: the CA cannot draw a serial.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy source gone") }

// hangingKey signs only once its caller gives up: a backend that hangs.
type hangingKey struct{ signer.Key }

func (hangingKey) Sign(ctx context.Context, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestIssueOutcomes reaches the issuance statuses the policy table does
// not: a rate limit, an internal failure and an unavailable signer, each
// produced by the real core under a configuration that causes it.
func TestIssueOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     envConfig
		first   int // status of the first request
		second  int // status of the same request again; 0: not sent
		code    rotor.ErrorCode
		refused bool
	}{
		{name: "fail/rate-limited", cfg: envConfig{limiter: &rotor.Limiter{Rate: 1e-6, Burst: 1}},
			first: http.StatusCreated, second: http.StatusTooManyRequests, code: rotor.ERateLimited},
		{name: "fail/no-randomness", cfg: envConfig{rand: failingReader{}},
			first: http.StatusInternalServerError, code: rotor.EInternal},
		// A key that never answers: the monitor's deadline ends the
		// signature, and the CA refuses as for any signer outage.
		{name: "fail/signer-timeout", cfg: envConfig{signTimeout: 20 * time.Millisecond,
			wrapKey: func(k signer.Key) signer.Key { return hangingKey{k} }},
			first: http.StatusServiceUnavailable, code: rotor.ESignerUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			url := sqliteURL(t)
			e := newEnv(t, url, c.cfg)
			send := func() *response {
				return e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates",
					Header: withType(bearer(e.token), "application/pkcs10"), Body: testpki.CSR(t, testpki.Key(t, "ecdsa-p256"), nil)})
			}
			r := send()
			if c.second != 0 {
				if r.Status != c.first {
					t.Fatalf("first request: status %d: %s", r.Status, r.Body)
				}
				r = send()
			}
			want := c.second
			if want == 0 {
				want = c.first
			}
			p := r.problem(t)
			if r.Status != want || rotor.CodeFromProblemType(p.Type) != c.code {
				t.Errorf("status %d type %s, want %d %s", r.Status, p.Type, want, c.code)
			}
			if r.Status != http.StatusInternalServerError && r.Header.Get("Retry-After") == "" {
				t.Errorf("no Retry-After on a limit or an outage")
			}
			q := "SELECT count(*) FROM refusals WHERE reason = '" + string(c.code) + "'"
			if n := countRows(t, url, q); n != 1 {
				t.Errorf("%d refusal rows for %s, want 1", n, c.code)
			}
		})
	}
}

// TestMetrics checks the counters where the answer is decided, and that the
// store and the signer instrument themselves on the same registry.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	ok := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates",
		Header: withType(bearer(e.token), "application/pkcs10"), Body: testpki.CSR(t, testpki.Key(t, "ecdsa-p256"), nil)})
	bad := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates",
		Header: withType(bearer(e.token), "application/pkcs10"), Body: []byte("garbage")})
	if ok.Status != http.StatusCreated || bad.Status != http.StatusBadRequest {
		t.Fatalf("statuses %d %d", ok.Status, bad.Status)
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"rotor_issuances_total", map[string]string{"authenticator": "token"}, 1},
		{"rotor_refusals_total", map[string]string{"reason": "bad-csr"}, 1},
		{"rotor_refusals_total", map[string]string{"reason": "unauthenticated"}, 0},
		{"rotor_http_request_duration_seconds", map[string]string{"route": "/v1/certificates", "code": "201"}, 1},
		{"rotor_http_request_duration_seconds", map[string]string{"route": "/v1/certificates", "code": "400"}, 1},
		{"rotor_store_duration_seconds", map[string]string{"op": "record_issuance"}, 1},
		{"rotor_store_duration_seconds", map[string]string{"op": "record_refusal"}, 1},
		{"rotor_signer_duration_seconds", nil, 1},
		{"rotor_signer_errors_total", nil, 0},
	}
	for _, c := range checks {
		if got := metricValue(t, e.metrics, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
