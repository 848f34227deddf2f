package store_test

import (
	"fmt"
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
