package api_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
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
			// Token lookups cached for a second, as rotor-ca serve does.
			e := newEnv(b, be.url(b), envConfig{tokenFresh: time.Second})
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

// BenchmarkIssueUnderFlood is BenchmarkIssue's good callers from 127.0.0.1,
// quiet and then while 16 connections from 127.0.0.2 send bad tokens as
// fast as they can, with the per-source limiter and refusal budget on as
// rotor-ca serve sets them. It reports the good callers' p99, so the two
// runs compare in one go:
//
//	go test ./api/ -run '^$' -bench BenchmarkIssueUnderFlood -benchtime 10s
func BenchmarkIssueUnderFlood(b *testing.B) {
	for _, flood := range []bool{false, true} {
		name := map[bool]string{false: "quiet", true: "flood"}[flood]
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, sqliteURL(b), envConfig{sourceLimiter: &rotor.Limiter{Rate: 1, Burst: 20},
				budget: rotor.DefaultRefusalBudget})
			csr := testpki.CSR(b, testpki.Key(b, "ecdsa-p256"), nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var flooded atomic.Int64
			if flood {
				bad := fromAddr(e, "127.0.0.2")
				for range 16 {
					go func() {
						for ctx.Err() == nil {
							if _, err := post(bad, e.URL, rotor.TokenPrefix+"flood", nil); err == nil {
								flooded.Add(1)
							}
						}
					}()
				}
			}
			good := fromAddr(e, "127.0.0.1")
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					start := time.Now()
					status, err := post(good, e.URL, e.token, csr)
					if err != nil || status != http.StatusCreated {
						b.Errorf("good caller: status %d: %v", status, err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issued/s")
			b.ReportMetric(float64(flooded.Load())/b.Elapsed().Seconds(), "flood-req/s")
		})
	}
}

// BenchmarkRenewalInfo compares GET /v1/renewal-info/{serial} (a store
// read, then the window) with GET /v1/bundle (memory only), over HTTPS
// with keep-alive, 16 requests in flight, on each real store: what a fleet
// polling renewal info costs the CA beside what it already pays for the
// bundle.
//
//	ROTOR_TEST_POSTGRES_URL=... go test ./api/ -run '^$' -bench BenchmarkRenewalInfo -benchtime 5s
func BenchmarkRenewalInfo(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			e := newEnv(b, be.url(b), envConfig{})
			serial := issueByToken(b, e).Serial
			for _, path := range []string{"/v1/bundle", "/v1/renewal-info/" + serial} {
				b.Run(strings.Split(path, "/")[2], func(b *testing.B) {
					client := e.client(nil)
					b.SetParallelism(8)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							resp, err := client.Get(e.URL + path)
							if err != nil {
								b.Error(err)
								return
							}
							_, _ = io.Copy(io.Discard, resp.Body) // drain, so the connection is reused
							resp.Body.Close()
							if resp.StatusCode != http.StatusOK {
								b.Errorf("GET %s: status %d", path, resp.StatusCode)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
				})
			}
		})
	}
}
