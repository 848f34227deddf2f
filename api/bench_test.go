package api_test

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/rotor-dev/rotor/internal/testpki"
)

// BenchmarkIssue measures whole issuances: HTTPS with keep-alive to the
// in-process server, static-token authentication against the store,
// policy check, signature and the committed audit row. CSRs (P-256) are
// signed beforehand, as a fleet's agents would have them ready. With
// SetParallelism(32) on two cores, 64 requests are in flight.
//
//	ROTOR_TEST_POSTGRES_URL=... go test ./api/ -run '^$' -bench BenchmarkIssue -benchtime 15s
func BenchmarkIssue(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			e := newEnv(b, be.url(b), envConfig{})
			csrs := make([][]byte, 512)
			for i := range csrs {
				csrs[i] = testpki.CSR(b, testpki.Key(b, "ecdsa-p256"), nil)
			}
			client := e.client(nil)
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 128
			var next atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := csrs[next.Add(1)%int64(len(csrs))]
					status, err := post(client, e.URL, e.token, body)
					if err != nil || status != http.StatusCreated {
						b.Errorf("status %d: %v", status, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issued/s")
		})
	}
}
