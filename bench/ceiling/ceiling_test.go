package ceiling

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/bench/load"
)

// TestBare checks the bare CA signs a CSR's key under its root, and
// refuses what is not a CSR.
func TestBare(t *testing.T) {
	pki, err := NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	bodies, err := load.Bodies(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		body []byte
		want int
	}{
		{"ok/p256-csr", bodies[0], http.StatusCreated},
		{"fail/not-json", []byte("csr"), http.StatusBadRequest},
		{"fail/no-pem", []byte(`{"csr":"x"}`), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			pki.Bare().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/certificates", bytes.NewReader(tc.body)))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == http.StatusCreated {
				checkIssued(t, pki, rec.Body.Bytes())
			}
		})
	}
}

// checkIssued verifies the answer's leaf against the root through the
// chain.
func checkIssued(t *testing.T, pki *PKI, body []byte) {
	t.Helper()
	var out issued
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	leaf, err := rotor.ParseCertificates([]byte(out.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM(pki.RootPEM)
	inter.AppendCertsFromPEM([]byte(out.Chain))
	if _, err := leaf[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("leaf does not verify: %v", err)
	}
	if leaf[0].SerialNumber.Text(16) != out.Serial {
		t.Fatalf("serial %s, leaf says %s", out.Serial, leaf[0].SerialNumber.Text(16))
	}
}
