package authn

import (
	"context"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rotor-dev/rotor"
)

// newFileJWT returns a JWT authenticator reading the published keys from a
// file, with time fixed at t0.
func newFileJWT(t testing.TB) *JWT {
	t.Helper()
	a, err := NewJWT(JWTConfig{
		JWKSFile: writeFile(t, "jwks.json", jwksOf(t, "rsa-1", "rsa-pss", "ec-256", "ec-384")),
		Issuer:   testIssuer,
		Now:      func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestJWT(t *testing.T) {
	t.Parallel()
	a := newFileJWT(t)
	good := saClaims(t0)
	k8s := func(ns, sa string) map[string]any {
		return map[string]any{"namespace": ns, "serviceaccount": map[string]any{"name": sa, "uid": "u"}}
	}
	l5d := with(good, map[string]any{"aud": []string{"identity.l5d.io"}})
	tests := []struct {
		name     string
		token    string
		audience string // rotor.Credentials.Audience
		want     rotor.ErrorCode
	}{
		{name: "ok/request-audience", token: mint(t, "ec-256", "ec-256", jose.ES256, l5d), audience: "identity.l5d.io"},
		{name: "fail/request-audience-not-in-token", token: mint(t, "ec-256", "ec-256", jose.ES256, good),
			audience: "identity.l5d.io", want: rotor.EUnauthenticated},
		{name: "fail/token-for-request-audience-only", token: mint(t, "ec-256", "ec-256", jose.ES256, l5d), want: rotor.EUnauthenticated},
		{name: "ok/rs256", token: mint(t, "rsa-1", "rsa-1", jose.RS256, good)},
		{name: "ok/ps256", token: mint(t, "rsa-pss", "rsa-pss", jose.PS256, good)},
		{name: "ok/es256", token: mint(t, "ec-256", "ec-256", jose.ES256, good)},
		{name: "ok/es384-key-without-alg", token: mint(t, "ec-384", "ec-384", jose.ES384, good)},
		{name: "ok/audience-among-several", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"aud": []string{"https://kubernetes.default.svc", "rotor"}}))},
		{name: "ok/audience-as-string", token: mint(t, "ec-256", "ec-256", jose.ES256, with(good, map[string]any{"aud": "rotor"}))},
		{name: "ok/expired-within-leeway", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"exp": t0.Add(-10 * time.Second).Unix()}))},
		{name: "fail/expired", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"exp": t0.Add(-time.Minute).Unix()})), want: rotor.EUnauthenticated},
		{name: "fail/not-yet-valid", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"nbf": t0.Add(time.Minute).Unix()})), want: rotor.EUnauthenticated},
		{name: "fail/issued-in-future", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"iat": t0.Add(time.Minute).Unix()})), want: rotor.EUnauthenticated},
		{name: "fail/no-expiry", token: mint(t, "ec-256", "ec-256", jose.ES256, with(good, map[string]any{"exp": nil})),
			want: rotor.EUnauthenticated},
		{name: "fail/wrong-audience", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"aud": []string{"https://kubernetes.default.svc"}})), want: rotor.EUnauthenticated},
		{name: "fail/no-audience", token: mint(t, "ec-256", "ec-256", jose.ES256, with(good, map[string]any{"aud": nil})),
			want: rotor.EUnauthenticated},
		{name: "fail/wrong-issuer", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"iss": "https://evil.example"})), want: rotor.EUnauthenticated},
		{name: "fail/unknown-kid", token: mint(t, "rogue", "rogue", jose.ES256, good), want: rotor.EUnauthenticated},
		{name: "fail/no-kid", token: mint(t, "ec-256", "", jose.ES256, good), want: rotor.EUnauthenticated},
		{name: "fail/signed-by-other-key-under-known-kid", token: mint(t, "rogue", "ec-256", jose.ES256, good),
			want: rotor.EUnauthenticated},
		{name: "fail/alg-none", token: unsigned(t, "rsa-1", good), want: rotor.EUnauthenticated},
		{name: "fail/hs256-with-public-key-as-secret", token: hmacWithPublicKey(t, "rsa-1", good), want: rotor.EUnauthenticated},
		{name: "fail/alg-differs-from-published", token: mint(t, "rsa-1", "rsa-1", jose.PS256, good), want: rotor.EUnauthenticated},
		{name: "fail/sub-mismatch", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"sub": "system:serviceaccount:shop:admin"})), want: rotor.EUnauthenticated},
		{name: "fail/claim-names-other-account", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"kubernetes.io": k8s("kube-system", "web")})), want: rotor.EUnauthenticated},
		{name: "fail/missing-kubernetes-claim", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"kubernetes.io": nil})), want: rotor.EUnauthenticated},
		{name: "fail/invalid-namespace", token: mint(t, "ec-256", "ec-256", jose.ES256,
			with(good, map[string]any{"sub": "system:serviceaccount:Shop:web", "kubernetes.io": k8s("Shop", "web")})),
			want: rotor.EUnauthenticated},
		{name: "fail/garbage-with-two-dots", token: "not.a.jwt", want: rotor.EUnauthenticated},
		{name: "no-creds/empty", token: "", want: errNoCreds},
		{name: "no-creds/opaque-token", token: "abcdef0123456789", want: errNoCreds},
		{name: "no-creds/static-token", token: rotor.TokenPrefix + "a.b.c", want: errNoCreds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			caller, err := a.Authenticate(context.Background(), rotor.Credentials{BearerToken: tt.token, Audience: tt.audience})
			checkResult(t, caller, err, tt.want, NameJWT, shopWeb)
			if err == nil && caller.Subject != "system:serviceaccount:shop:web" {
				t.Errorf("subject = %q, want the JWT's sub", caller.Subject)
			}
		})
	}
}

func TestNewJWTConfig(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "jwks.json", jwksOf(t, "ec-256"))
	noKeys := writeFile(t, "empty.json", []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0","kid":"h"}]}`))
	tests := []struct {
		name string
		cfg  JWTConfig
		ok   bool
	}{
		{name: "ok/file", cfg: JWTConfig{JWKSFile: file, Issuer: testIssuer}, ok: true},
		{name: "ok/url-not-fetched-yet", cfg: JWTConfig{JWKSURL: "https://127.0.0.1:1/jwks", Issuer: testIssuer}, ok: true},
		{name: "fail/no-issuer", cfg: JWTConfig{JWKSFile: file}},
		{name: "fail/no-source", cfg: JWTConfig{Issuer: testIssuer}},
		{name: "fail/both-sources", cfg: JWTConfig{JWKSFile: file, JWKSURL: "https://127.0.0.1:1/jwks", Issuer: testIssuer}},
		{name: "fail/plain-http-url", cfg: JWTConfig{JWKSURL: "http://127.0.0.1:1/jwks", Issuer: testIssuer}},
		{name: "fail/missing-file", cfg: JWTConfig{JWKSFile: file + ".missing", Issuer: testIssuer}},
		{name: "fail/only-symmetric-keys", cfg: JWTConfig{JWKSFile: noKeys, Issuer: testIssuer}},
		{name: "fail/hs256-allowed", cfg: JWTConfig{JWKSFile: file, Issuer: testIssuer,
			Algorithms: []jose.SignatureAlgorithm{jose.ES256, jose.HS256}}},
		{name: "fail/none-allowed", cfg: JWTConfig{JWKSFile: file, Issuer: testIssuer,
			Algorithms: []jose.SignatureAlgorithm{"none"}}},
		{name: "fail/missing-ca-file", cfg: JWTConfig{JWKSURL: "https://127.0.0.1:1/jwks", Issuer: testIssuer,
			JWKSCAFile: file + ".missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewJWT(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("NewJWT: err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestJWTRestrictedAlgorithms checks that a configured algorithm list is
// enforced, not only the built-in ban on none and HMAC.
func TestJWTRestrictedAlgorithms(t *testing.T) {
	t.Parallel()
	a, err := NewJWT(JWTConfig{JWKSFile: writeFile(t, "jwks.json", jwksOf(t, "rsa-1", "ec-256")), Issuer: testIssuer,
		Algorithms: []jose.SignatureAlgorithm{jose.RS256}, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	caller, err := a.Authenticate(ctx, rotor.Credentials{BearerToken: mint(t, "rsa-1", "rsa-1", jose.RS256, saClaims(t0))})
	checkResult(t, caller, err, "", NameJWT, shopWeb)
	_, err = a.Authenticate(ctx, rotor.Credentials{BearerToken: mint(t, "ec-256", "ec-256", jose.ES256, saClaims(t0))})
	checkResult(t, rotor.Caller{}, err, rotor.EUnauthenticated, NameJWT, shopWeb)
}
