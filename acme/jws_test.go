package acme_test

import (
	"crypto"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rotor-dev/rotor/internal/testpki"
)

// jwsOpts is one JWS a test signs by hand.
type jwsOpts struct {
	key     crypto.Signer
	alg     jose.SignatureAlgorithm
	kid     string // "": embed the jwk
	nonce   string // "": none
	url     string
	payload string
}

type staticNonce string

func (n staticNonce) Nonce() (string, error) { return string(n), nil }

func signJWS(t testing.TB, o jwsOpts) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: o.kid == ""}
	if o.nonce != "" {
		opts.NonceSource = staticNonce(o.nonce)
	}
	opts.WithHeader("url", o.url)
	key := jose.JSONWebKey{Key: o.key, KeyID: o.kid}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: o.alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(o.payload))
	if err != nil {
		t.Fatal(err)
	}
	return jws.FullSerialize()
}

// nonce is a fresh nonce from newNonce.
func (e *env) nonce(t testing.TB) string {
	t.Helper()
	res, err := e.client.Head(e.url + "/acme/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	n := res.Header.Get("Replay-Nonce")
	if res.StatusCode != 200 || n == "" {
		t.Fatalf("HEAD new-nonce: %d, nonce %q", res.StatusCode, n)
	}
	return n
}

// post sends a JWS body and returns the status and the problem type, ""
// for a success.
func (e *env) post(t testing.TB, url, body string) (int, string) {
	t.Helper()
	res, err := e.client.Post(url, "application/jose+json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Replay-Nonce") == "" {
		t.Fatalf("answer %d without Replay-Nonce", res.StatusCode)
	}
	var p struct{ Type string }
	if res.StatusCode >= 300 {
		_ = json.NewDecoder(res.Body).Decode(&p)
	}
	return res.StatusCode, strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:")
}

// TestJWS checks RFC 8555 section 6 on newAccount with onlyReturnExisting:
// a JWS that passes every check meets accountDoesNotExist; one that fails
// a check is refused for it.
func TestJWS(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.url(t), nil)
			u := e.url + "/acme/new-account"
			existing := `{"onlyReturnExisting":true}`
			used := e.nonce(t)
			e.post(t, u, signJWS(t, jwsOpts{key: mustKey(t, "ecdsa"), alg: jose.ES256, nonce: used, url: u, payload: existing}))
			p384 := testpki.Key(t, "ecdsa-p384")
			tests := []struct {
				name string
				o    jwsOpts
				want string
			}{
				{"ok/es256", jwsOpts{key: mustKey(t, "ecdsa"), alg: jose.ES256}, "accountDoesNotExist"},
				{"ok/es384", jwsOpts{key: p384, alg: jose.ES384}, "accountDoesNotExist"},
				{"ok/rs256", jwsOpts{key: mustKey(t, "rsa"), alg: jose.RS256}, "accountDoesNotExist"},
				{"ok/eddsa", jwsOpts{key: mustKey(t, "ed25519"), alg: jose.EdDSA}, "accountDoesNotExist"},
				{"fail/ps256", jwsOpts{key: mustKey(t, "rsa"), alg: jose.PS256}, "badSignatureAlgorithm"},
				{"fail/reused-nonce", jwsOpts{key: mustKey(t, "ecdsa"), alg: jose.ES256, nonce: used}, "badNonce"},
				{"fail/made-up-nonce", jwsOpts{key: mustKey(t, "ecdsa"), alg: jose.ES256, nonce: "AAAAAAAAAAAAAAAAAAAAAA"}, "badNonce"},
				{"fail/other-url", jwsOpts{key: mustKey(t, "ecdsa"), alg: jose.ES256, url: e.url + "/acme/new-order"}, "unauthorized"},
				{"fail/kid-on-new-account", jwsOpts{key: mustKey(t, "ecdsa"), alg: jose.ES256, kid: e.url + "/acme/account/x"}, "malformed"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					o := tt.o
					if o.nonce == "" {
						o.nonce = e.nonce(t)
					}
					if o.url == "" {
						o.url = u
					}
					o.payload = existing
					if _, typ := e.post(t, u, signJWS(t, o)); typ != tt.want {
						t.Fatalf("problem %q, want %q", typ, tt.want)
					}
				})
			}
			t.Run("fail/compact-serialization", func(t *testing.T) {
				full := signJWS(t, jwsOpts{key: mustKey(t, "ecdsa"), alg: jose.ES256, nonce: e.nonce(t), url: u, payload: existing})
				jws, _ := jose.ParseSignedJSON(full, []jose.SignatureAlgorithm{jose.ES256})
				compact, _ := jws.CompactSerialize()
				if _, typ := e.post(t, u, compact); typ != "malformed" {
					t.Fatalf("compact JWS: problem %q, want malformed", typ)
				}
			})
			t.Run("ok/eddsa-account-by-hand", func(t *testing.T) { e.eddsaAccount(t) })
		})
	}
}

// eddsaAccount binds an Ed25519 account with an EAB made by hand, as RFC
// 8555 7.3.4 describes it: no client here signs EdDSA.
func (e *env) eddsaAccount(t testing.TB) {
	t.Helper()
	u := e.url + "/acme/new-account"
	kid, mac := e.eab(t, webapp)
	key := mustKey(t, "ed25519")
	jwk, _ := (&jose.JSONWebKey{Key: key.Public()}).MarshalJSON()
	opts := (&jose.SignerOptions{}).WithHeader("url", u).WithHeader("kid", kid)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: mac}, opts)
	if err != nil {
		t.Fatal(err)
	}
	eab, err := s.Sign(jwk)
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"termsOfServiceAgreed":true,"externalAccountBinding":` + eab.FullSerialize() + `}`
	if status, typ := e.post(t, u, signJWS(t, jwsOpts{key: key, alg: jose.EdDSA, nonce: e.nonce(t), url: u, payload: payload})); status != http.StatusCreated {
		t.Fatalf("EdDSA account with EAB: %d %s, want 201", status, typ)
	}
}

// TestNonceAcrossReplicas: two CAs sharing one PostgreSQL take each nonce
// once between them, and a nonce one handed out is good at the other.
// (Behind a load balancer replicas share a host name; here each has its
// own port, so each JWS is signed for the replica it is sent to.)
func TestNonceAcrossReplicas(t *testing.T) {
	url := backends[1].url(t)
	a := newEnv(t, url, nil)
	b := newEnv(t, url, a.pki)
	tests := []struct {
		name        string
		from        *env // hands out the nonce
		first, then *env // use it, in turn
	}{
		{"ok/from-a-at-b/fail/again-at-a", a, b, a},
		{"ok/from-b-at-a/fail/again-at-b", b, a, b},
		{"ok/from-a-at-a/fail/again-at-b", a, a, b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.from.nonce(t)
			for i, at := range []*env{tt.first, tt.then} {
				u := at.url + "/acme/new-account"
				body := signJWS(t, jwsOpts{key: mustKey(t, "ecdsa"), alg: jose.ES256, nonce: n, url: u,
					payload: `{"onlyReturnExisting":true}`})
				want := []string{"accountDoesNotExist", "badNonce"}[i]
				if _, typ := at.post(t, u, body); typ != want {
					t.Fatalf("use %d of the nonce: problem %q, want %q", i+1, typ, want)
				}
			}
		})
	}
}
