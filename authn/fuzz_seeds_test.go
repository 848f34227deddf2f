package authn

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rotor-dev/rotor"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the fuzz seeds in testdata/fuzz from TestFuzzSeeds' tables")

// bearerSeed is a FuzzBearerToken seed and the chain's answer to it: want
// "" means accepted by the authenticator named by.
type bearerSeed struct {
	name, token string
	want        rotor.ErrorCode
	by          string
}

func bearerSeeds(t testing.TB, fx *fuzzFixture) []bearerSeed {
	claims := saClaims(t0)
	valid := mintWith(t, jose.SigningKey{Algorithm: jose.EdDSA, Key: fuzzEd25519(fuzzKeyLabel)}, fuzzKID, claims)
	der, err := x509.MarshalPKIXPublicKey(fuzzEd25519(fuzzKeyLabel).Public())
	if err != nil {
		t.Fatal(err)
	}
	// The classic key confusion: HS256 keyed with the published key's PEM.
	confused := mintWith(t, jose.SigningKey{Algorithm: jose.HS256,
		Key: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}, fuzzKID, claims)
	return []bearerSeed{
		{name: "jwt-valid", token: valid, by: NameJWT},
		{name: "jwt-alg-none", token: unsigned(t, fuzzKID, claims), want: rotor.EUnauthenticated},
		{name: "jwt-hs256-public-key-as-secret", token: confused, want: rotor.EUnauthenticated},
		{name: "jwt-truncated", token: valid[:len(valid)-7], want: rotor.EUnauthenticated},
		{name: "jwt-huge-header", token: hugeHeaderToken(t, fx.signers[0], claims), by: NameJWT},
		{name: "static-valid", token: fx.token, by: NameToken},
		{name: "static-truncated", token: fx.token[:len(fx.token)-1], want: rotor.EUnauthenticated},
		{name: "static-prefix-only", token: rotor.TokenPrefix, want: rotor.EUnauthenticated},
		{name: "empty", token: "", want: errNoCreds},
		{name: "opaque", token: "0123456789abcdef", want: rotor.EUnauthenticated},
	}
}

// hugeHeaderToken is a validly signed token whose header, 50 times a real
// one, carries 2 KiB of padding and arrays nested 256 deep for the JOSE
// parser to wade through. Larger only slows the fuzzer: go-jose's cost
// grows linearly (about 1ms for 8 KiB and 512 levels, uninstrumented).
func hugeHeaderToken(t testing.TB, s fuzzSigner, claims map[string]any) string {
	t.Helper()
	header := fmt.Sprintf(`{"alg":%q,"kid":%q,"pad":%q,"x":%s1%s}`, s.alg, s.kid,
		strings.Repeat("A", 2<<10), strings.Repeat("[", 256), strings.Repeat("]", 256))
	token, err := s.compact([]byte(header), mustJSON(t, claims))
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// claimsSeed is a FuzzJWTClaims seed: header and claims signed by
// fuzzFixture.signers[signer], and the JWT authenticator's answer.
type claimsSeed struct {
	name           string
	header, claims string
	signer         uint8
	want           rotor.ErrorCode
}

func claimsSeeds(t testing.TB) []claimsSeed {
	ed := fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"JWT"}`, fuzzKID)
	ec := fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"JWT"}`, fuzzECKID)
	good := saClaims(t0)
	claims := func(edits map[string]any) string { return string(mustJSON(t, with(good, edits))) }
	valid := claims(nil)
	const refused = rotor.EUnauthenticated
	return []claimsSeed{
		{name: "valid", header: ed, claims: valid},
		{name: "valid-es256-key-without-alg", header: ec, claims: valid, signer: 1},
		{name: "unpublished-key", header: ed, claims: valid, signer: 2, want: refused},
		{name: "header-alg-none", header: fmt.Sprintf(`{"alg":"none","kid":%q}`, fuzzKID), claims: valid, want: refused},
		{name: "header-alg-not-the-keys", header: fmt.Sprintf(`{"alg":"ES384","kid":%q}`, fuzzECKID), claims: valid,
			signer: 1, want: refused},
		{name: "header-unencoded-payload", header: fmt.Sprintf(`{"alg":"EdDSA","b64":false,"crit":["b64"],"kid":%q}`, fuzzKID),
			claims: valid, want: refused},
		{name: "no-expiry", header: ed, claims: claims(map[string]any{"exp": nil}), want: refused},
		{name: "expiry-beyond-int64", header: ed, claims: claims(map[string]any{"exp": 1e300}), want: refused},
		{name: "not-yet-valid", header: ed, claims: claims(map[string]any{"nbf": t0.Add(time.Hour).Unix()}), want: refused},
		{name: "audience-as-string", header: ed, claims: claims(map[string]any{"aud": DefaultAudience})},
		// RFC 7519 lets a parser refuse duplicate members or take the last;
		// go-jose refuses, so no two readers can disagree on the issuer.
		{name: "duplicate-issuer", header: ed, claims: `{"iss":"https://evil.example",` + valid[1:], want: refused},
		{name: "claim-names-are-case-sensitive", header: ed,
			claims: claims(map[string]any{"iss": "https://evil.example", "ISS": testIssuer}), want: refused},
		{name: "sub-mismatch", header: ed, claims: claims(map[string]any{"sub": "system:serviceaccount:shop:admin"}), want: refused},
		{name: "not-json", header: ed, claims: "not json", want: refused},
	}
}

// mustJSON is v as JSON; encoding/json sorts map keys, so seeds are stable.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFuzzSeeds holds the committed seeds to the tables above, and each
// seed to the answer its name promises, so the fuzzers start from inputs
// that reach acceptance as well as each refusal.
func TestFuzzSeeds(t *testing.T) {
	t.Parallel()
	fx := newFuzzFixture(t)
	ctx := context.Background()
	for _, s := range bearerSeeds(t, fx) {
		t.Run("FuzzBearerToken/"+s.name, func(t *testing.T) {
			checkSeedFile(t, "FuzzBearerToken", s.name, s.token)
			caller, err := fx.chain.Authenticate(ctx, rotor.Credentials{BearerToken: s.token})
			checkResult(t, caller, err, s.want, s.by, shopWeb)
		})
	}
	for _, s := range claimsSeeds(t) {
		t.Run("FuzzJWTClaims/"+s.name, func(t *testing.T) {
			checkSeedFile(t, "FuzzJWTClaims", s.name, []byte(s.header), []byte(s.claims), s.signer)
			token, err := fx.signers[s.signer].compact([]byte(s.header), []byte(s.claims))
			if err != nil {
				t.Fatal(err)
			}
			caller, err := fx.jwt.Authenticate(ctx, rotor.Credentials{BearerToken: token})
			checkResult(t, caller, err, s.want, NameJWT, shopWeb)
		})
	}
}

// checkSeedFile compares testdata/fuzz/<target>/<name> with the values in
// the fuzzing engine's corpus format, or writes it with -update-fuzz-seeds.
func checkSeedFile(t *testing.T, target, name string, values ...any) {
	t.Helper()
	var want bytes.Buffer
	want.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case string:
			fmt.Fprintf(&want, "string(%q)\n", v)
		case []byte:
			fmt.Fprintf(&want, "[]byte(%q)\n", v)
		case uint8:
			fmt.Fprintf(&want, "byte(%q)\n", v)
		default:
			t.Fatalf("no corpus encoding for %T", v)
		}
	}
	path := filepath.Join("testdata", "fuzz", target, name)
	if *updateSeeds {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("%s is missing or stale (%v): go test ./authn -run TestFuzzSeeds -update-fuzz-seeds", path, err)
	}
}
