package authn

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/rotor-dev/rotor"
)

// benchAuth runs a in parallel, as the API server does, and fails on the
// first refusal.
func benchAuth(b *testing.B, a rotor.Authenticator, cred rotor.Credentials) {
	b.Helper()
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, cred); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Authenticate(ctx, cred); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkJWT(b *testing.B) {
	a := newFileJWT(b)
	for _, k := range []struct {
		name string
		alg  jose.SignatureAlgorithm
	}{{"rsa-1", jose.RS256}, {"ec-256", jose.ES256}} {
		b.Run(string(k.alg), func(b *testing.B) {
			benchAuth(b, a, rotor.Credentials{BearerToken: mint(b, k.name, k.name, k.alg, saClaims(t0))})
		})
	}
}

func BenchmarkMTLS(b *testing.B) {
	pki := newPKI(b, "bench")
	a := NewMTLS(pki.trust(b), onRecord, trustDomain, newClock().Now)
	benchAuth(b, a, rotor.Credentials{PeerCertificates: pki.leaf(b, shopWeb, trustDomain, nil)})
}

func BenchmarkStaticTokens(b *testing.B) {
	store, token := newTokenStore(b)
	benchAuth(b, NewStaticTokens(store, nil, nil), rotor.Credentials{BearerToken: token})
}

func BenchmarkTokenReview(b *testing.B) {
	srv := newAPIServer(b, map[string]any{"tok-web": accepted(webUser, "rotor")})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		name string
		ttl  int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(c.name, func(b *testing.B) {
			r := newReview(b, srv, newClock(), func(cfg *TokenReviewConfig) {
				cfg.CacheTTL, cfg.Logger = 0, quiet
				if c.ttl < 0 {
					cfg.CacheTTL = -1
				}
			})
			benchAuth(b, r, rotor.Credentials{BearerToken: "tok-web"})
		})
	}
}
