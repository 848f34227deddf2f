// Package bench holds the in-process benchmark of the whole issuance path
// without HTTP; the harness, the load generator and the fleet are in its
// subdirectories.
package bench

import (
	"context"
	"crypto"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/authn"
	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/signer"
	"github.com/rotor-dev/rotor/store"
)

// BenchmarkIssueInProcess measures rotor.CA.Issue as rotor-ca wires it,
// with no HTTP or TLS: static-token authentication (cached for a second,
// as serve does), the policy check, the file signer, and the audit row
// committed to the real store before Issue returns. CSRs (P-256) are
// signed beforehand. 64 calls are in flight (SetParallelism(32) on two
// cores), as in api's BenchmarkIssue, which adds HTTPS on top:
//
//	ROTOR_TEST_POSTGRES_URL=... go test ./bench/ -run '^$' -bench BenchmarkIssueInProcess -benchtime 10s
func BenchmarkIssueInProcess(b *testing.B) {
	for _, be := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "rotor.db") }},
		{"postgres", testenv.PostgresURL},
	} {
		b.Run(be.name, func(b *testing.B) {
			ca, token := newCA(b, be.url(b))
			csrs := make([][]byte, 512)
			for i := range csrs {
				csrs[i] = testpki.CSR(b, testpki.Key(b, "ecdsa-p256"), nil)
			}
			var next atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := rotor.IssueRequest{CSR: csrs[next.Add(1)%int64(len(csrs))],
						Credentials: rotor.Credentials{BearerToken: token, RemoteAddr: "127.0.0.1:1"}}
					if _, _, err := ca.Issue(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issued/s")
		})
	}
}

// newCA wires a CA on the store at url as rotor-ca serve does for a file
// key, and returns it with a static token for default/bench.
func newCA(b *testing.B, url string) (*rotor.CA, string) {
	quiet := slog.New(slog.DiscardHandler)
	st, err := store.Open(context.Background(), url, store.Options{Migrate: true, Logger: quiet})
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	b.Cleanup(func() { _ = st.Close() })
	pki := testpki.New(b, testpki.Options{Name: "Bench", Signer: func(k crypto.Signer) rotor.Signer {
		m := signer.NewMonitored(signer.LocalKey(k), signer.MonitorConfig{})
		b.Cleanup(func() { m.Close() })
		return m
	}})
	id := rotor.Identity{Namespace: "default", ServiceAccount: "bench"}
	token, rec, err := rotor.NewStaticToken(nil, id, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	action := rotor.AdminAction{Time: time.Now(), Actor: rotor.Actor{Name: "cli:bench", Kind: rotor.ActorCLI}}
	if err := st.CreateToken(context.Background(), rec, action); err != nil {
		b.Fatalf("create token: %v", err)
	}
	trust := rotor.NewTrustHolder(pki.Trust)
	chain, _, err := authn.NewChain(authn.ChainConfig{MTLS: true, Trust: trust, Records: st, TrustDomain: "cluster.local",
		Tokens: st, Logger: quiet, Fresh: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ca, err := rotor.NewCA(rotor.CAConfig{Policy: rotor.Policy{TrustDomain: "cluster.local", DefaultTTL: 24 * time.Hour,
		MaxTTL: 24 * time.Hour, ClockSkew: 20 * time.Second}, Trust: trust, Authenticator: chain, Audit: st,
		Admin: st, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ca.Close)
	return ca, token
}
