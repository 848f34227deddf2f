package main

import (
	"crypto/elliptic"
	"database/sql"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	_ "modernc.org/sqlite"

	"github.com/rotor-dev/rotor/signer/kmsfake"
)

// TestGCPKMSEndToEnd runs the real binaries against Cloud KMS: the fake
// KMS speaks the real gRPC API, which the binary reaches through
// --kms-insecure-endpoint (loopback only). init certifies a key version
// that exists already, serve issues with it, and signer faults (an outage,
// a corrupted checksum, a KMS slower than --sign-timeout, a KMS that is
// gone and comes back on its address) make /readyz fail
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
	ca := startSignerCA(t, nil, t.TempDir(), "--signer", "gcpkms", "--kms-key", keyVersion, "--kms-insecure-endpoint", kms.Addr())
	if !pub.Equal(ca.issuer.PublicKey) {
		t.Fatal("the issuer certificate does not certify the KMS key version")
	}

	tests := []struct {
		name  string
		fault kmsfake.Fault
		// stopped: the KMS goes away instead, its port closed and its
		// connections cut, and comes back on the same address.
		stopped bool
	}{
		{name: "fail/outage", fault: kmsfake.Fault{Code: codes.Unavailable}},
		{name: "fail/corrupt-signature-crc", fault: kmsfake.Fault{CorruptSignatureCRC: true}},
		{name: "fail/slower-than-sign-timeout", fault: kmsfake.Fault{Delay: 3 * time.Second}},
		{name: "fail/server-stopped", stopped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inject := func(*testing.T) { kms.SetFault(tt.fault) }
			heal := func(*testing.T) { kms.SetFault(kmsfake.Fault{}) }
			if tt.stopped {
				inject = func(*testing.T) { kms.Close() }
				heal = func(t *testing.T) {
					if err := kms.Restart(); err != nil {
						t.Fatal(err)
					}
				}
			}
			ca.checkOutage(t, 1, inject, heal)
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
