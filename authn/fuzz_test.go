package authn

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rotor-dev/rotor"
)

// The fuzz targets run the real authenticators (static tokens in a migrated
// SQLite store, the JWT authenticator reading a JWKS file, go-jose) and hold
// every input to the rotor.Authenticator contract: no panic; a refusal is an
// *rotor.Error with code EUnauthenticated, rotor.ErrNoCredentials when the
// token is not the authenticator's kind; and a Caller only for a token this
// test issued or signed. Their seeds live in testdata/fuzz/<FuzzName>/ and
// are rewritten by TestFuzzSeeds -update-fuzz-seeds.

const (
	fuzzKID      = "fuzz-ed25519"
	fuzzECKID    = "fuzz-ec256"
	fuzzKeyLabel = "rotor authn fuzz key"
	// maxClaimsInput caps FuzzJWTClaims' header plus claims. Real tokens are
	// about 1 KiB; the cap also keeps inputs under encoding/json's limit of
	// 10,000 nesting levels, which go-jose's decoder does not have, so the
	// oracle never refuses to read what the authenticator read.
	maxClaimsInput = 8 << 10
)

// fuzzEd25519 derives an Ed25519 key from label: the same key in every run
// and every fuzz worker, and Ed25519 signatures are deterministic, so a
// committed seed signed with it stays valid (the authenticator's clock is
// fixed at t0).
func fuzzEd25519(label string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(label))
	return ed25519.NewKeyFromSeed(seed[:])
}

// fuzzSigner signs compact JWS as one key would.
type fuzzSigner struct {
	kid, alg  string
	published bool // in the authenticator's JWKS
	sign      func(msg []byte) ([]byte, error)
}

// compact signs header and claims as they are, with no re-encoding, so the
// fuzzer controls every byte the authenticator parses.
func (s fuzzSigner) compact(header, claims []byte) (string, error) {
	input := signingInput(header, claims)
	sig, err := s.sign(input)
	if err != nil {
		return "", err
	}
	return string(input) + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// signingInput is the JWS signing input of RFC 7515, section 5.1.
func signingInput(header, payload []byte) []byte {
	enc := base64.RawURLEncoding.EncodeToString
	return []byte(enc(header) + "." + enc(payload))
}

// es256 signs as RFC 7518 section 3.4 says: r and s, 32 bytes each.
func es256(k *ecdsa.PrivateKey) func([]byte) ([]byte, error) {
	return func(msg []byte) ([]byte, error) {
		h := sha256.Sum256(msg)
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			return nil, err
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out, nil
	}
}

// fuzzFixture is what each fuzz worker sets up once.
type fuzzFixture struct {
	static  *StaticTokens
	jwt     *JWT
	chain   rotor.Authenticators
	token   string // the one static token in the store
	subject string // the Caller.Subject it authenticates with
	// signers: 0 the published Ed25519 key, 1 a published P-256 key (no
	// "alg" in the JWKS), 2 an Ed25519 key the JWKS does not publish.
	signers []fuzzSigner
}

func newFuzzFixture(t testing.TB) *fuzzFixture {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed, rogue := fuzzEd25519(fuzzKeyLabel), fuzzEd25519("a key nobody published")
	edSign := func(k ed25519.PrivateKey) func([]byte) ([]byte, error) {
		return func(msg []byte) ([]byte, error) { return ed25519.Sign(k, msg), nil }
	}
	fx := &fuzzFixture{signers: []fuzzSigner{
		{kid: fuzzKID, alg: string(jose.EdDSA), published: true, sign: edSign(ed)},
		{kid: fuzzECKID, alg: string(jose.ES256), published: true, sign: es256(ec)},
		{kid: fuzzKID, alg: string(jose.EdDSA), sign: edSign(rogue)},
	}}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: ed.Public(), KeyID: fuzzKID, Algorithm: string(jose.EdDSA), Use: "sig"},
		// Published without "alg", so tokens naming it reach go-jose's own
		// check of the algorithm against the key.
		{Key: ec.Public(), KeyID: fuzzECKID, Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	fx.jwt, err = NewJWT(JWTConfig{JWKSFile: writeFile(t, "jwks.json", jwks), Issuer: testIssuer,
		Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st := openSQLite(t)
	// Fixed bytes, so seeds can hold the token; obviously not a real one.
	token, stored, err := rotor.NewStaticToken(bytes.NewReader(make([]byte, 32)), shopWeb, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(context.Background(), stored, testAction); err != nil {
		t.Fatal(err)
	}
	fx.static, fx.token, fx.subject = NewStaticTokens(st, nil, nil), token, stored.Subject()
	fx.chain = rotor.Authenticators{fx.static, fx.jwt}
	return fx
}

// FuzzBearerToken feeds arbitrary bearer strings, compact JWS among them,
// to the static-token and JWT authenticators and to their chain.
func FuzzBearerToken(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Fuzz(func(t *testing.T, token string) {
		ctx := context.Background()
		cred := rotor.Credentials{BearerToken: token}
		byToken, errToken := fx.static.Authenticate(ctx, cred)
		fx.checkStatic(t, token, byToken, errToken)
		byJWT, errJWT := fx.jwt.Authenticate(ctx, cred)
		fx.checkJWT(t, token, byJWT, errJWT)

		caller, err := fx.chain.Authenticate(ctx, cred)
		switch {
		case errToken == nil:
			checkResult(t, caller, err, "", NameToken, shopWeb)
		case errJWT == nil:
			checkResult(t, caller, err, "", NameJWT, shopWeb)
		case token == "":
			checkRefusal(t, token, caller, err, errNoCreds)
		default:
			// A token no authenticator takes is refused, never "no
			// credentials": the client must hear its token was wrong.
			checkRefusal(t, token, caller, err, rotor.EUnauthenticated)
		}
	})
}

// checkStatic: exactly the one stored token is accepted.
func (fx *fuzzFixture) checkStatic(t *testing.T, token string, caller rotor.Caller, err error) {
	t.Helper()
	switch {
	case token == fx.token:
		checkResult(t, caller, err, "", NameToken, shopWeb)
		if caller.Subject != fx.subject {
			t.Fatalf("subject = %q, want %q", caller.Subject, fx.subject)
		}
	case !strings.HasPrefix(token, rotor.TokenPrefix):
		checkRefusal(t, token, caller, err, errNoCreds)
	default:
		checkRefusal(t, token, caller, err, rotor.EUnauthenticated)
	}
}

// checkJWT: only a compact JWS is the JWT authenticator's kind, and one it
// accepts must verify, without go-jose, as signed by the published Ed25519
// key (the only key anything is signed with here) over acceptable claims.
func (fx *fuzzFixture) checkJWT(t *testing.T, token string, caller rotor.Caller, err error) {
	t.Helper()
	if strings.HasPrefix(token, rotor.TokenPrefix) || strings.Count(token, ".") != 2 {
		checkRefusal(t, token, caller, err, errNoCreds)
		return
	}
	if err != nil {
		checkRefusal(t, token, caller, err, rotor.EUnauthenticated)
		return
	}
	pub := fuzzEd25519(fuzzKeyLabel).Public().(ed25519.PublicKey)
	header, claims, why := verifyCompact(token, pub)
	if why == "" {
		why = headerProblem(header, fx.signers[0])
	}
	if why == "" {
		why = claimsProblem(claims, caller)
	}
	if why != "" {
		t.Fatalf("accepted %.300q as %+v, but %s", token, caller, why)
	}
}

// FuzzJWTClaims signs arbitrary headers and claims with a real key and
// checks that the JWT authenticator accepts only a published key, under the
// algorithm and key ID it is published with, over claims a service-account
// token must have.
func FuzzJWTClaims(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Fuzz(func(t *testing.T, header, claims []byte, signer uint8) {
		if len(header)+len(claims) > maxClaimsInput {
			return
		}
		s := fx.signers[int(signer)%len(fx.signers)]
		token, err := s.compact(header, claims)
		if err != nil {
			t.Fatal(err)
		}
		caller, err := fx.jwt.Authenticate(context.Background(), rotor.Credentials{BearerToken: token})
		switch {
		case strings.HasPrefix(token, rotor.TokenPrefix):
			checkRefusal(t, token, caller, err, errNoCreds)
			return
		case err != nil:
			checkRefusal(t, token, caller, err, rotor.EUnauthenticated)
			return
		case !s.published:
			t.Fatalf("accepted a token signed by an unpublished key, as %+v", caller)
		}
		why := headerProblem(header, s)
		if why == "" {
			why = claimsProblem(claims, caller)
		}
		if why != "" {
			t.Fatalf("accepted header %.300q claims %.300q as %+v, but %s", header, claims, caller, why)
		}
	})
}

// checkRefusal asserts a refusal as the rotor.Authenticator contract words
// it: no caller, and an *rotor.Error with code want (errNoCreds meaning
// rotor.ErrNoCredentials).
func checkRefusal(t *testing.T, token string, caller rotor.Caller, err error, want rotor.ErrorCode) {
	t.Helper()
	var rerr *rotor.Error
	if err == nil || !errors.As(err, &rerr) || caller != (rotor.Caller{}) {
		t.Fatalf("token %.300q: caller %+v, err %v (%T); want a refusal, an *rotor.Error", token, caller, err, err)
	}
	checkResult(t, caller, err, want, "", rotor.Identity{})
}
