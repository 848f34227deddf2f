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
	for _, be := range []struct {
		name string
		b    backend
	}{{"postgres", postgres}, {"sqlite", sqlite}} {
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
	for _, be := range []struct {
		name string
		b    backend
	}{{"postgres", postgres}, {"sqlite", sqlite}} {
		b.Run(be.name, func(b *testing.B) {
			s, _ := be.b.open(b, store.Options{})
			rootA, rootB := newRoot(b, "root A"), newRoot(b, "root B")
			old, both := newBundle(b, rootA), newBundle(b, rootA, rootB)
			for _, bundle := range []*rotor.Bundle{old, both} {
				if err := s.RecordBundle(b.Context(), bundle, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			tmpl := newIssuance(b, rotor.Identity{Namespace: "bench", ServiceAccount: "sa"}, time.Now())
			var wg sync.WaitGroup
			for w := range 64 {
				wg.Go(func() {
					for i := w; i < 2*identities; i += 64 {
						iss := *tmpl
						iss.Serial = fmt.Sprintf("%040x", i+1)
						iss.Identity.ServiceAccount = fmt.Sprintf("sa-%d", i%identities)
						iss.IssuedAt = tmpl.IssuedAt.Add(time.Duration(i/identities) * time.Minute)
						iss.BundleFingerprint = old.Fingerprint
						if i%identities%2 == 0 && i >= identities {
							iss.BundleFingerprint = both.Fingerprint
						}
						if err := s.RecordIssuance(b.Context(), &iss); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
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
