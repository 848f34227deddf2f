package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/rotor-dev/rotor"
)

// ServiceAccountIssuer mints Kubernetes-style service-account JWTs with an
// ES256 key whose JWKS it wrote to JWKSFile, as an API server publishes it.
type ServiceAccountIssuer struct {
	Issuer   string
	KeyID    string
	JWKSFile string
	key      crypto.Signer
}

// NewServiceAccountIssuer makes an issuer with a fresh key and its JWKS
// file in a temporary directory.
func NewServiceAccountIssuer(t testing.TB) *ServiceAccountIssuer {
	t.Helper()
	s := &ServiceAccountIssuer{Issuer: "https://kubernetes.default.svc", KeyID: "test-key",
		key: Key(t, string(rotor.ECDSAP256))}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: s.key.Public(), KeyID: s.KeyID, Algorithm: "ES256", Use: "sig"}}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(s.JWKSFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// Claims are those of a projected token for id with audience aud, valid
// from now for an hour.
func (s *ServiceAccountIssuer) Claims(id rotor.Identity, aud string, now time.Time) map[string]any {
	return map[string]any{
		"iss": s.Issuer, "aud": []string{aud}, "sub": "system:serviceaccount:" + id.Namespace + ":" + id.ServiceAccount,
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": id.Namespace,
			"serviceaccount": map[string]any{"name": id.ServiceAccount, "uid": "5c8a6f1e-2b44-4f57-a2f4-1b2f6d9c1e22"}},
	}
}

// Mint signs claims with the issuer's key.
func (s *ServiceAccountIssuer) Mint(t testing.TB, claims map[string]any) string {
	t.Helper()
	return s.MintWith(t, jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, claims)
}

// MintWith signs claims with any key, under the issuer's key ID: a forger's
// token, or an HMAC "signed" with the public key.
func (s *ServiceAccountIssuer) MintWith(t testing.TB, key jose.SigningKey, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", s.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// PublicKeyBytes is the issuer's public key as an HMAC secret would be
// taken from it by an algorithm-confusion attack: its DER.
func (s *ServiceAccountIssuer) PublicKeyBytes() []byte {
	return ecdsaPublicBytes(s.key.Public().(*ecdsa.PublicKey))
}

func ecdsaPublicBytes(k *ecdsa.PublicKey) []byte {
	b, _ := k.Bytes()
	return b
}

// Unsigned is an "alg":"none" token for claims, built by hand: go-jose
// refuses to make one.
func (s *ServiceAccountIssuer) Unsigned(t testing.TB, claims map[string]any) string {
	t.Helper()
	hdr, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": s.KeyID})
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(hdr) + "." + enc(body) + "."
}
