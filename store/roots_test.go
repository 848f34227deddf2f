package store_test

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/store"
)

// newRoot makes a self-signed root CA certificate with a fresh key.
func newRoot(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	root, _ := testpki.Root(t, name, rotor.ECDSAP256, 24*time.Hour, time.Now())
	return root
}

func newBundle(t testing.TB, roots ...*x509.Certificate) *rotor.Bundle {
	t.Helper()
	b, err := rotor.NewBundle(roots)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testRoots checks the root-rotation signal: bundles recorded by the CA,
// issuances reporting them, and how many live identities and certificates
// hold a root, through the store and through the SQL view.
func testRoots(t *testing.T, b backend) {
	s, url := b.open(t, store.Options{})
	rootA, rootB, rootC := newRoot(t, "root A"), newRoot(t, "root B"), newRoot(t, "root C")
	bundleA, bundleAB := newBundle(t, rootA), newBundle(t, rootA, rootB)
	fpA, fpB, fpC := rotor.Fingerprint(rootA.Raw), rotor.Fingerprint(rootB.Raw), rotor.Fingerprint(rootC.Raw)
	for _, bundle := range []*rotor.Bundle{bundleAB, bundleA, bundleAB} { // again: idempotent
		if err := s.RecordBundle(t.Context(), bundle, time.Now()); err != nil {
			t.Fatalf("RecordBundle: %v", err)
		}
	}
	if n := b.count(t, url, `SELECT count(*) FROM bundle_roots`); n != 3 {
		t.Fatalf("bundle_roots has %d rows, want 3", n)
	}

	now := time.Now()
	fleet := func(sa string) rotor.Identity { return rotor.Identity{Namespace: "fleet", ServiceAccount: sa} }
	unknown := strings.Repeat("f", 64)
	var newestWithoutB time.Time
	for _, rec := range []struct {
		sa     string
		age    time.Duration
		bundle string
	}{
		{"x", 2 * time.Hour, bundleA.Fingerprint}, // superseded, still live
		{"x", time.Hour, bundleAB.Fingerprint},
		{"y", time.Hour, bundleA.Fingerprint},
		{"z", time.Hour, ""}, // an old client that reports nothing
		{"v", time.Hour, unknown},
		{"w", 30 * time.Hour, bundleAB.Fingerprint}, // expired: not live
	} {
		iss := newIssuance(t, fleet(rec.sa), now.Add(-rec.age))
		iss.BundleFingerprint = rec.bundle
		if err := s.RecordIssuance(t.Context(), iss); err != nil {
			t.Fatal(err)
		}
		if rec.bundle != bundleAB.Fingerprint && iss.NotAfter.After(newestWithoutB) {
			newestWithoutB = iss.NotAfter
		}
	}
	tests := []struct {
		name             string
		root             string
		served           bool
		holding, missing []string
		withoutRoot      int
		withoutRootUntil time.Time
		code             rotor.ErrorCode
	}{
		{name: "ok/new-root-partly-there", root: fpB, served: true, holding: []string{"x"},
			missing: []string{"v", "y", "z"}, withoutRoot: 4, withoutRootUntil: newestWithoutB},
		{name: "ok/old-root", root: fpA, served: true, holding: []string{"x", "y"},
			missing: []string{"v", "z"}, withoutRoot: 2, withoutRootUntil: newestWithoutB},
		{name: "ok/root-never-served", root: fpC, missing: []string{"v", "x", "y", "z"}, withoutRoot: 5,
			withoutRootUntil: newestWithoutB},
		{name: "fail/uppercase", root: strings.ToUpper(fpB), code: rotor.EInvalid},
		{name: "fail/short", root: fpB[:40], code: rotor.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := s.RootStatus(t.Context(), tt.root)
			if code := rotor.ErrorCodeOf(err); code != tt.code {
				t.Fatalf("RootStatus: %v, want code %q", err, tt.code)
			}
			if tt.code != "" {
				return
			}
			var holding, missing []string
			for _, id := range st.Identities {
				if id.HoldsRoot {
					holding = append(holding, id.Identity.ServiceAccount)
				}
			}
			for _, id := range st.Missing() {
				missing = append(missing, id.Identity.ServiceAccount)
			}
			if st.Served != tt.served || !slices.Equal(holding, tt.holding) || !slices.Equal(missing, tt.missing) ||
				st.Holding() != len(tt.holding) {
				t.Fatalf("served %v holding %v missing %v; want %v %v %v", st.Served, holding, missing,
					tt.served, tt.holding, tt.missing)
			}
			if st.LiveCertificates != 5 || st.WithoutRoot != tt.withoutRoot || !st.WithoutRootUntil.Equal(tt.withoutRootUntil) {
				t.Fatalf("live %d, without root %d until %v; want 5, %d until %v", st.LiveCertificates,
					st.WithoutRoot, st.WithoutRootUntil, tt.withoutRoot, tt.withoutRootUntil)
			}
			if st.Complete() {
				t.Fatal("Complete with identities missing the root")
			}
			// The operator's view says the same, for served roots.
			q := fmt.Sprintf(`SELECT count(*) FROM identity_bundle_status WHERE root_fingerprint = '%s' AND holds_root`, tt.root)
			if n := b.count(t, url, q); n != int64(len(tt.holding)) {
				t.Fatalf("%s\n= %d, want %d", q, n, len(tt.holding))
			}
		})
	}
	if n := b.count(t, url, `SELECT count(*) FROM identity_bundle_status`); n != 4*2 {
		t.Errorf("identity_bundle_status has %d rows, want 8 (4 live identities, 2 served roots)", n)
	}
	t.Run("ok/complete", func(t *testing.T) { testRootComplete(t, b) })
}

// testRootComplete: once every live certificate went to a holder of the
// new root, the status is complete.
func testRootComplete(t *testing.T, b backend) {
	s, _ := b.open(t, store.Options{})
	rootA, rootB := newRoot(t, "root A"), newRoot(t, "root B")
	bundle := newBundle(t, rootA, rootB)
	if err := s.RecordBundle(t.Context(), bundle, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{"api", "web"} {
		iss := newIssuance(t, rotor.Identity{Namespace: "fleet", ServiceAccount: sa}, time.Now())
		iss.BundleFingerprint = bundle.Fingerprint
		if err := s.RecordIssuance(t.Context(), iss); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.RootStatus(t.Context(), rotor.Fingerprint(rootB.Raw))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Complete() || st.Holding() != 2 || len(st.Missing()) != 0 || st.LiveCertificates != 2 ||
		!st.WithoutRootUntil.IsZero() {
		t.Fatalf("status %+v: want complete with 2 identities holding the root", st)
	}
}
