package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const testIssuer = "https://kubernetes.default.svc.cluster.local"

// signingKey is a real key the tests sign with, published in a JWKS under
// kid with alg (alg "" publishes the key without an "alg" member).
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	jwks string // the "alg" published in the JWKS, possibly ""
	priv crypto.Signer
}

// testKeys are generated once: RSA key generation is slow and the keys are
// never modified.
var testKeys = sync.OnceValue(func() map[string]signingKey {
	rsaKey := func() crypto.Signer {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ecKey := func(c elliptic.Curve) crypto.Signer {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	keys := map[string]signingKey{}
	for _, k := range []signingKey{
		{kid: "rsa-1", alg: jose.RS256, jwks: "RS256", priv: rsaKey()},
		{kid: "rsa-pss", alg: jose.PS256, jwks: "PS256", priv: rsaKey()},
		{kid: "ec-256", alg: jose.ES256, jwks: "ES256", priv: ecKey(elliptic.P256())},
		{kid: "ec-384", alg: jose.ES384, jwks: "", priv: ecKey(elliptic.P384())},
		{kid: "rsa-2", alg: jose.RS256, jwks: "RS256", priv: rsaKey()},               // published only after rotation
		{kid: "rogue", alg: jose.ES256, jwks: "ES256", priv: ecKey(elliptic.P256())}, // never published
	} {
		keys[k.kid] = k
	}
	return keys
})

// jwksOf is the JWK Set publishing the named keys' public halves.
func jwksOf(t testing.TB, kids ...string) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, kid := range kids {
		k := testKeys()[kid]
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: kid, Algorithm: k.jwks, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// saClaims are the claims of a projected service-account token for shopWeb
// issued at now, as the API server writes them.
func saClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"aud": []string{"rotor"},
		"sub": "system:serviceaccount:shop:web",
		"iat": now.Add(-time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      "shop",
			"pod":            map[string]any{"name": "web-7d9f", "uid": "0b3c1a52-8a11-4d0e-9c3f-0f3a3b0d9e11"},
			"serviceaccount": map[string]any{"name": "web", "uid": "5c8a6f1e-2b44-4f57-a2f4-1b2f6d9c1e22"},
		},
	}
}

// with returns a copy of claims with edits applied; a nil value deletes.
func with(claims map[string]any, edits map[string]any) map[string]any {
	out := maps.Clone(claims)
	for k, v := range edits {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// mint signs claims with the named key under header kid.
func mint(t testing.TB, keyName, kid string, alg jose.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	k := testKeys()[keyName]
	return mintWith(t, jose.SigningKey{Algorithm: alg, Key: k.priv}, kid, claims)
}

func mintWith(t testing.TB, key jose.SigningKey, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	sig, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned builds an "alg":"none" token by hand: go-jose refuses to make one.
func unsigned(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	hdr, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(hdr) + "." + enc(body) + "."
}

// hmacWithPublicKey is the classic key-confusion forgery: HS256 keyed with
// the PEM of the issuer's RSA public key.
func hmacWithPublicKey(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(testKeys()[kid].priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return mintWith(t, jose.SigningKey{Algorithm: jose.HS256, Key: secret}, kid, claims)
}
