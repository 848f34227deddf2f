package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// TestCheckpointEndpoints: no checkpoint yet is 404; a workload may not
// sign one; an admin signs the head and anyone reads it back.
func TestCheckpointEndpoints(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.url(t), envConfig{})
			if r := e.do(t, call{Method: http.MethodGet, Path: "/v1/audit/checkpoint"}); r.Status != http.StatusNotFound ||
				rotor.CodeFromProblemType(r.problem(t).Type) != rotor.ENotFound {
				t.Fatalf("before the first: %d %s", r.Status, r.Body)
			}
			if r := e.do(t, call{Method: http.MethodPost, Path: "/v1/audit/checkpoint", Header: bearer(e.token)}); r.Status != http.StatusForbidden {
				t.Fatalf("as a workload: %d %s", r.Status, r.Body)
			}
			signed := e.do(t, call{Method: http.MethodPost, Path: "/v1/audit/checkpoint", Header: bearer(e.admin)})
			if signed.Status != http.StatusCreated || !strings.HasPrefix(string(signed.Body), "rotor-audit-test\n") {
				t.Fatalf("as an admin: %d %s", signed.Status, signed.Body)
			}
			got := e.do(t, call{Method: http.MethodGet, Path: "/v1/audit/checkpoint"})
			if got.Status != http.StatusOK || string(got.Body) != string(signed.Body) {
				t.Fatalf("GET after signing: %d %s", got.Status, got.Body)
			}
		})
	}
}

// issueFor issues one certificate for token and returns its serial.
func issueFor(t testing.TB, e *env, token string) string {
	t.Helper()
	r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates", Header: withType(bearer(token), "application/pkcs10"),
		Body: testpki.CSR(t, testpki.Key(t, "ecdsa-p256"), nil)})
	if r.Status != http.StatusCreated {
		t.Fatalf("issue: %d %s", r.Status, r.Body)
	}
	var out rotor.IssuedCertificate
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Serial
}

// TestCertificateRecordAccess: a record is answered to its own identity
// and to admins only.
func TestCertificateRecordAccess(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.url(t), envConfig{})
			serial := issueFor(t, e, e.token)
			other := e.newToken(t, rotor.Identity{Namespace: "default", ServiceAccount: "intruder"})
			cases := []struct {
				name   string
				header http.Header
				status int
			}{
				{"own-identity", bearer(e.token), http.StatusOK},
				{"admin", bearer(e.admin), http.StatusOK},
				{"other-identity", bearer(other), http.StatusForbidden},
				{"unauthenticated", nil, http.StatusUnauthorized},
			}
			for _, c := range cases {
				r := e.do(t, call{Method: http.MethodGet, Path: "/v1/certificates/" + serial, Header: c.header})
				if r.Status != c.status {
					t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.status)
				}
				if c.status != http.StatusOK && strings.Contains(string(r.Body), serial+`","identity`) {
					t.Errorf("%s: the refusal carries the record: %s", c.name, r.Body)
				}
			}
		})
	}
}

// TestListPagination pages through every certificate while more are
// issued between pages: each certificate that existed before the first
// page is seen exactly once, pages never repeat one, newest come first, and
// one issued after the first page never shifts into a later page.
func TestListPagination(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.url(t), envConfig{})
			before := map[string]bool{}
			for range 25 {
				before[issueFor(t, e, e.token)] = true
			}
			seen, during := map[string]bool{}, map[string]bool{}
			var pages int
			for cursor := ""; ; pages++ {
				path := "/v1/certificates?limit=4&identity=default/webapp"
				if cursor != "" {
					path += "&cursor=" + cursor
				}
				r := e.do(t, call{Method: http.MethodGet, Path: path, Header: bearer(e.admin)})
				var page rotor.CertificateList
				if r.Status != http.StatusOK || json.Unmarshal(r.Body, &page) != nil {
					t.Fatalf("page %d: %d %s", pages, r.Status, r.Body)
				}
				for i, c := range page.Certificates {
					switch {
					case seen[c.Serial]:
						t.Fatalf("page %d repeats %s", pages, c.Serial)
					case during[c.Serial]:
						t.Fatalf("page %d lists %s, issued after the first page", pages, c.Serial)
					case i > 0 && c.IssuedAt.After(page.Certificates[i-1].IssuedAt):
						t.Errorf("page %d is not newest first", pages)
					}
					seen[c.Serial] = true
				}
				if cursor = page.NextCursor; cursor == "" {
					break
				}
				if r.Header.Get("Link") == "" {
					t.Errorf("page %d has a next cursor but no Link header", pages)
				}
				for range 2 {
					during[issueFor(t, e, e.token)] = true
				}
			}
			for s := range before {
				if !seen[s] {
					t.Errorf("certificate %s issued before paging was never listed", s)
				}
			}
			if pages < 6 || len(during) < 10 {
				t.Errorf("%d pages with %d issued meanwhile: the test did not page under inserts", pages, len(during))
			}
		})
	}
}
