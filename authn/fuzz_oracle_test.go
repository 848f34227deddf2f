package authn

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rotor-dev/rotor"
)

// The fuzz targets' oracle: what a token the authenticator accepted must
// be, decided with crypto/ed25519 and encoding/json instead of go-jose, so a
// go-jose mistake cannot vouch for itself.

// verifyCompact splits a compact JWS and checks its Ed25519 signature by
// pub, returning the decoded header and payload, or why it is not signed by
// pub. It judges decoded bytes: Go's base64 decoder skips newlines and the
// unused bits of a last character, and go-jose verifies the re-encoded
// segments, so several spellings of one signed token verify alike.
func verifyCompact(token string, pub ed25519.PublicKey) (header, payload []byte, why string) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, "it is not a compact JWS"
	}
	var segs [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			return nil, nil, fmt.Sprintf("segment %d is not base64url: %v", i, err)
		}
		segs[i] = b
	}
	if !ed25519.Verify(pub, signingInput(segs[0], segs[1]), segs[2]) {
		return nil, nil, "its signature is not the fuzz key's"
	}
	return segs[0], segs[1], ""
}

// headerProblem says why a JOSE header does not name s's key and algorithm,
// or "".
func headerProblem(header []byte, s fuzzSigner) string {
	h, err := decodeObject(header)
	switch {
	case err != nil:
		return "its header is not a JSON object: " + err.Error()
	case h["alg"] != s.alg:
		return fmt.Sprintf("its header names alg %v, not %s", h["alg"], s.alg)
	case h["kid"] != s.kid:
		return fmt.Sprintf("its header names kid %v, not %s", h["kid"], s.kid)
	}
	return ""
}

// claimsProblem says why claims are not those of a current service-account
// token for caller, as the JWT authenticator is configured in the fixture
// (issuer testIssuer, audience DefaultAudience, time t0, 30s leeway), or "".
// Times get one more second of slack: NumericDates may be fractional.
func claimsProblem(claims []byte, caller rotor.Caller) string {
	c, err := decodeObject(claims)
	if err != nil {
		return "its claims are not a JSON object: " + err.Error()
	}
	const slack = 30 + 1
	now := float64(t0.Unix())
	if c["iss"] != testIssuer {
		return fmt.Sprintf("its issuer is %v", c["iss"])
	}
	if !hasAudience(c["aud"], DefaultAudience) {
		return fmt.Sprintf("its audience %v lacks %q", c["aud"], DefaultAudience)
	}
	if exp, ok := number(c["exp"]); !ok || exp < now-slack {
		return fmt.Sprintf("its expiry %v is missing or past", c["exp"])
	}
	for _, name := range []string{"nbf", "iat"} {
		if v := c[name]; v != nil {
			if n, ok := number(v); !ok || n > now+slack {
				return fmt.Sprintf("its %s %v is not a time before now", name, v)
			}
		}
	}
	return identityProblem(c, caller)
}

// identityProblem says why caller is not the service account the
// kubernetes.io claim and sub both name, or "".
func identityProblem(c map[string]any, caller rotor.Caller) string {
	k8s, _ := c["kubernetes.io"].(map[string]any)
	sa, _ := k8s["serviceaccount"].(map[string]any)
	ns, _ := k8s["namespace"].(string)
	name, _ := sa["name"].(string)
	id := rotor.Identity{Namespace: ns, ServiceAccount: name}
	sub := "system:serviceaccount:" + ns + ":" + name
	switch {
	case id.Validate() != nil:
		return fmt.Sprintf("its kubernetes.io claim names no valid service account: %v", c["kubernetes.io"])
	case c["sub"] != sub:
		return fmt.Sprintf("its sub %v is not %q", c["sub"], sub)
	case caller != rotor.Caller{Identity: id, Authenticator: NameJWT, Subject: sub}:
		return fmt.Sprintf("the caller should be %v by %s as %s", id, NameJWT, sub)
	}
	return ""
}

// decodeObject decodes one JSON object, keeping numbers exact, and nothing
// after it.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return m, nil
}

// hasAudience reports whether aud, a string or an array, holds want.
func hasAudience(aud any, want string) bool {
	switch aud := aud.(type) {
	case string:
		return aud == want
	case []any:
		for _, a := range aud {
			if a == want {
				return true
			}
		}
	}
	return false
}

// number reads a JSON number as decodeObject keeps it.
func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}
