package main

import (
	"crypto/elliptic"
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	_ "modernc.org/sqlite"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/issuer"
	"github.com/rotor-dev/rotor/signer/kmsfake"
)

// TestGCPKMSEndToEnd runs the real binaries against Cloud KMS: the fake
// KMS speaks the real gRPC API, which the binary reaches through
// --kms-insecure-endpoint (loopback only). init certifies a key version
// that exists already, serve issues with it, and signer faults (an outage,
// a corrupted checksum, a KMS slower than --sign-timeout) make /readyz fail
// and issuance answer 503 with nothing issued, until the KMS heals and the
// CA recovers by itself.
func TestGCPKMSEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	kms := kmsfake.Start(t)
	keyVersion := kmsfake.KeyVersionName("rotor-issuer", 1)
	pub, err := kms.AddKey(keyVersion, elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caDir, data := filepath.Join(dir, "ca"), filepath.Join(dir, "data")
	initCA(t, nil, caDir, "--signer", "gcpkms", "--kms-key", keyVersion, "--kms-insecure-endpoint", kms.Addr())
	issuerCert := readCerts(t, filepath.Join(caDir, issuer.IssuerCertFile))[0]
	root := readCerts(t, filepath.Join(caDir, issuer.RootCertFile))[0]
	if !pub.Equal(issuerCert.PublicKey) {
		t.Fatal("the issuer certificate does not certify the KMS key version")
	}
	bundle := filepath.Join(caDir, issuer.BundleFile)
	ca := serveCA(t, nil, bundle, "--data-dir", data, "--issuer-config", filepath.Join(caDir, issuer.ConfigFile),
		"--trust-bundle", bundle, "--sign-timeout", "1s")
	token := createToken(t, data, "default", "kms")
	cl := ca.client(t)
	issueOK := func(t *testing.T) {
		t.Helper()
		got, err := issue(t.Context(), cl, token)
		if err != nil {
			t.Fatalf("issue: %v", err)
		}
		if err := verifyIssued(got, root); err != nil || got.Leaf.CheckSignatureFrom(issuerCert) != nil {
			t.Fatalf("certificate not signed by the KMS key under the root: %v", err)
		}
	}
	ready := func() int {
		code, _ := e2etest.HTTPGet(ca.URL+"/readyz", ca.Roots)
		return code
	}
	issueOK(t)
	db := filepath.Join(data, "rotor.db")

	tests := []struct {
		name  string
		fault kmsfake.Fault
	}{
		{"fail/outage", kmsfake.Fault{Code: codes.Unavailable}},
		{"fail/corrupt-signature-crc", kmsfake.Fault{CorruptSignatureCRC: true}},
		{"fail/slower-than-sign-timeout", kmsfake.Fault{Delay: 3 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := countRows(t, db, `SELECT count(*) FROM issuances`)
			issuedBefore := ca.metric(t, "rotor_issuances_total")
			kms.SetFault(tt.fault)
			e2etest.WaitFor(t, "/readyz to fail", 30*time.Second, func() bool { return ready() == http.StatusServiceUnavailable })
			// Enough failed signatures to trip the signer's breaker: from then
			// on only its background probe can find the KMS healthy again.
			for range 3 {
				_, err := issue(t.Context(), cl, token)
				if code := rotor.ErrorCodeOf(err); code != rotor.ESignerUnavailable {
					t.Fatalf("issue during the fault: %v (code %q), want %q", err, code, rotor.ESignerUnavailable)
				}
			}
			if got := countRows(t, db, `SELECT count(*) FROM issuances`); got != rows {
				t.Errorf("%d issuance rows during the fault, want %d", got, rows)
			}
			if got := ca.metric(t, "rotor_issuances_total"); got != issuedBefore {
				t.Errorf("rotor_issuances_total moved from %v to %v during the fault", issuedBefore, got)
			}
			kms.SetFault(kmsfake.Fault{})
			e2etest.WaitFor(t, "/readyz to recover", 30*time.Second, func() bool { return ready() == http.StatusOK })
			issueOK(t)
		})
	}
	if n := ca.metric(t, `rotor_refusals_total{reason="signer-unavailable"}`); n < float64(len(tests)) {
		t.Errorf("%v signer-unavailable refusals counted, want at least %d", n, len(tests))
	}
}

// countRows runs a counting query on a SQLite store file.
func countRows(t *testing.T, path, query string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(t.Context(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
