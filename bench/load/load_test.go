package load_test

import (
	"crypto/x509"
	"net/http/httptest"
	"testing"

	"github.com/rotor-dev/rotor/bench/ceiling"
	"github.com/rotor-dev/rotor/bench/load"
)

// TestRun drives the HTTPS no-op for an exact count over two "replicas"
// (the same server twice) and checks every request is counted once, as a
// 201 or by its cause.
func TestRun(t *testing.T) {
	srv := httptest.NewTLSServer(ceiling.Noop())
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	bodies, err := load.Bodies(4)
	if err != nil {
		t.Fatal(err)
	}
	res, err := load.Run(t.Context(), load.Config{URLs: []string{srv.URL, srv.URL}, Roots: roots, Token: "t",
		Conc: 4, N: 200, CSRs: 4, KeepSerials: true}, bodies)
	if err != nil {
		t.Fatal(err)
	}
	if res.Issued != 200 || len(res.Errors) != 0 || len(res.Serials) != 200 || res.P99 < res.P50 {
		t.Fatalf("issued=%d errors=%v serials=%d p50=%s p99=%s", res.Issued, res.Errors, len(res.Serials), res.P50, res.P99)
	}
}

// TestRunRefuses checks the load generator sends nothing off loopback and
// runs nothing it cannot.
func TestRunRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  load.Config
	}{
		{"fail/not-loopback", load.Config{URLs: []string{"https://192.0.2.1:8443"}, Token: "t", Conc: 1, N: 1, CSRs: 1}},
		{"fail/plain-http", load.Config{URLs: []string{"http://127.0.0.1:8443"}, Token: "t", Conc: 1, N: 1, CSRs: 1}},
		{"fail/no-credentials", load.Config{URLs: []string{"https://127.0.0.1:8443"}, Conc: 1, N: 1, CSRs: 1}},
		{"fail/no-count-or-duration", load.Config{URLs: []string{"https://127.0.0.1:8443"}, Token: "t", Conc: 1, CSRs: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := load.Run(t.Context(), tc.cfg, [][]byte{nil}); err == nil {
				t.Fatal("ran")
			}
		})
	}
}
