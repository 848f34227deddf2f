package store_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

// BenchmarkRecordIssuance measures committed audit rows per second with 1
// and 64 callers per GOMAXPROCS (b.SetParallelism), the second being what a
// loaded CA does.
//
//	ROTOR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run '^$' -bench RecordIssuance -benchtime 5s ./store/
func BenchmarkRecordIssuance(b *testing.B) {
	for _, be := range benchBackends {
		for _, par := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/parallelism-%d", be.name, par), func(b *testing.B) {
				s, _ := be.b.open(b, store.Options{})
				// One real record, made unique per row by its serial: the
				// benchmark measures the store, not certificate creation.
				tmpl := newIssuance(b, rotor.Identity{Namespace: "bench", ServiceAccount: "sa"}, time.Now())
				var n atomic.Uint64
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						iss := *tmpl
						iss.Serial = fmt.Sprintf("%040x", n.Add(1))
						if err := s.RecordIssuance(b.Context(), &iss); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// BenchmarkRootStatus measures `rotor-ca roots status` on a fleet of 10,000
// live identities with two live certificates each, half of them issued to
// holders of the new root.
//
//	ROTOR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run '^$' -bench RootStatus ./store/
func BenchmarkRootStatus(b *testing.B) {
	const identities = 10000
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			s, _ := be.b.open(b, store.Options{})
			rootA, rootB := newRoot(b, "root A"), newRoot(b, "root B")
			old, both := newBundle(b, rootA), newBundle(b, rootA, rootB)
			for _, bundle := range []*rotor.Bundle{old, both} {
				if err := s.RecordBundle(b.Context(), bundle, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			recordFleet(b, s, 2*identities, func(i int, iss *rotor.Issuance) {
				iss.Identity.ServiceAccount = fmt.Sprintf("sa-%d", i%identities)
				iss.IssuedAt = iss.IssuedAt.Add(time.Duration(i/identities) * time.Minute)
				iss.BundleFingerprint = old.Fingerprint
				if i%identities%2 == 0 && i >= identities {
					iss.BundleFingerprint = both.Fingerprint
				}
			})
			fp := rotor.Fingerprint(rootB.Raw)
			b.ResetTimer()
			for b.Loop() {
				st, err := s.RootStatus(b.Context(), fp)
				if err != nil {
					b.Fatal(err)
				}
				if len(st.Identities) != identities || st.Holding() != identities/2 {
					b.Fatalf("%d identities, %d holding; want %d, %d", len(st.Identities), st.Holding(), identities, identities/2)
				}
			}
		})
	}
}

// BenchmarkRevocations measures what a CRL costs the store with 10,000
// revoked certificates among 50,000 live ones: the check every replica
// makes once a second, and the list it reads when that changed.
//
//	ROTOR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run '^$' -bench Revocations ./store/
func BenchmarkRevocations(b *testing.B) {
	const live, revoked = 50000, 10000
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			s, _ := be.b.open(b, store.Options{})
			denied := rotor.Identity{Namespace: "bench", ServiceAccount: "revoked"}
			keyID := recordFleet(b, s, live, func(i int, iss *rotor.Issuance) {
				if i < revoked {
					iss.Identity = denied
				}
			})
			// One deny with revoke_certificates revokes them in one
			// transaction, where 10,000 revocations would take 10,000.
			if _, err := s.DenyIdentity(b.Context(), rotor.Denial{Identity: denied, Time: time.Now(), Actor: "bench",
				Reason: "bench"}, true, testAction); err != nil {
				b.Fatal(err)
			}
			since := time.Now()
			b.Run("head", func(b *testing.B) {
				for b.Loop() {
					if h, err := s.RevocationHead(b.Context()); err != nil || h == 0 {
						b.Fatalf("RevocationHead = %d, %v", h, err)
					}
				}
			})
			b.Run("list", func(b *testing.B) {
				for b.Loop() {
					l, err := s.Revocations(b.Context(), keyID, since)
					if err != nil || len(l.Entries) != revoked {
						b.Fatalf("Revocations: %v", err)
					}
				}
			})
		})
	}
}

// benchBackends are the stores every benchmark runs on.
var benchBackends = []struct {
	name string
	b    backend
}{{"postgres", postgres}, {"sqlite", sqlite}}

// recordFleet records n issuances from 64 callers at once, as a loaded CA
// would: one real record, given serial i+1 and then changed by edit. It
// returns their issuer key ID.
func recordFleet(b *testing.B, s *store.Store, n int, edit func(i int, iss *rotor.Issuance)) string {
	tmpl := newIssuance(b, rotor.Identity{Namespace: "bench", ServiceAccount: "sa"}, time.Now())
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				iss := *tmpl
				iss.Serial = fmt.Sprintf("%040x", i+1)
				edit(i, &iss)
				if err := s.RecordIssuance(b.Context(), &iss); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return tmpl.IssuerKeyID
}

// BenchmarkPruneBatch prunes 100,000 expired certificates in batches of
// 1,000 places: ns/op is one batch, the longest the chain's lock is held
// (and so the longest an issuance waits) while prune runs.
func BenchmarkPruneBatch(b *testing.B) {
	const rows, batch = 100000, 1000
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			s, _ := be.b.open(b, store.Options{})
			old := time.Now().Add(-100 * 24 * time.Hour)
			recordFleet(b, s, rows, func(i int, iss *rotor.Issuance) {
				iss.IssuedAt, iss.NotBefore, iss.NotAfter = old, old, old.Add(24*time.Hour)
			})
			var batches int
			var took time.Duration
			for b.Loop() {
				start := time.Now()
				res, err := s.Prune(b.Context(), time.Now().Add(-90*24*time.Hour), store.PruneOptions{Batch: batch,
					Action: testAction})
				if err != nil {
					b.Fatal(err)
				}
				took += time.Since(start)
				batches += res.Batches
			}
			if batches > 0 {
				b.ReportMetric(float64(took.Microseconds())/float64(batches)/1000, "ms/batch")
			}
		})
	}
}
