package acme

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rotor-dev/rotor"
)

// accountAlgs are the account key algorithms RFC 8555 6.2 asks for, and
// EdDSA: certbot's keys are RSA, lego's ECDSA.
var accountAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.EdDSA}

// flattened is a JWS in flattened JSON serialization (RFC 7515 7.2.2),
// the only one ACME allows: the other members are read only to refuse
// them.
type flattened struct {
	Protected  string          `json:"protected"`
	Payload    *string         `json:"payload"`
	Signature  string          `json:"signature"`
	Header     json.RawMessage `json:"header"`
	Signatures json.RawMessage `json:"signatures"`
}

// signed is a verified request: its payload ("" for POST-as-GET), and
// either the account (kid) or the key (jwk) that signed it.
type signed struct {
	payload []byte
	acct    rotor.ACMEAccount // zero when signed with jwk
	jwk     *jose.JSONWebKey  // nil when signed with kid
	url     string
}

// parseJWS checks a JWS's serialization and algorithms and returns it with
// its protected header, not yet verified.
func parseJWS(raw []byte, algs []jose.SignatureAlgorithm) (*jose.JSONWebSignature, jose.Header, error) {
	var f flattened
	if err := json.Unmarshal(raw, &f); err != nil || f.Protected == "" || f.Payload == nil || f.Signature == "" {
		return nil, jose.Header{}, malformed("the body is not a JWS in flattened JSON serialization")
	}
	if f.Header != nil || f.Signatures != nil {
		return nil, jose.Header{}, malformed("an ACME JWS has one signature and no unprotected header")
	}
	jws, err := jose.ParseSignedJSON(string(raw), algs)
	var alg *jose.ErrUnexpectedSignatureAlgorithm
	switch {
	case errors.As(err, &alg):
		return nil, jose.Header{}, &problem{Type: typeBadSignatureAlgorithm, Status: http.StatusBadRequest,
			Detail: "signature algorithm " + string(alg.Got) + " is not accepted: use ES256, ES384, RS256 or EdDSA"}
	case err != nil:
		return nil, jose.Header{}, &problem{Type: typeMalformed, Status: http.StatusBadRequest, Detail: "the JWS does not parse", Err: err}
	}
	return jws, jws.Signatures[0].Protected, nil
}

// verify reads and verifies the request's JWS (RFC 8555 6.2-6.5): its url
// must be this request's, its nonce one this CA handed out and not used,
// and it must be signed by jwk (allowJWK) or by a valid account's key
// (allowKID). Refusals are *problem values.
func (s *server) verify(w http.ResponseWriter, r *http.Request, allowJWK, allowKID bool) (*signed, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/jose+json" {
		return nil, &problem{Type: typeMalformed, Status: http.StatusUnsupportedMediaType,
			Detail: "an ACME request's Content-Type is application/jose+json"}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		return nil, malformed("the request body could not be read, or is too large")
	}
	jws, h, err := parseJWS(raw, accountAlgs)
	if err != nil {
		return nil, err
	}
	req := &signed{url: base(r) + strings.TrimPrefix(r.URL.Path, Prefix)}
	if u, _ := h.ExtraHeaders["url"].(string); u != req.url {
		return nil, unauthorized("the JWS url " + u + " is not this request's, " + req.url)
	}
	if err := s.useNonce(r, h.Nonce); err != nil {
		return nil, err
	}
	key, err := s.signer(r, h, req, allowJWK, allowKID)
	if err != nil {
		return nil, err
	}
	if req.payload, err = jws.Verify(key); err != nil {
		return nil, &problem{Type: typeMalformed, Status: http.StatusBadRequest, Detail: "the JWS signature does not verify", Err: err}
	}
	return req, nil
}

func (s *server) useNonce(r *http.Request, nonce string) error {
	err := s.store.UseNonce(r.Context(), nonce, s.cfg.Now())
	if rotor.ErrorCodeOf(err) == rotor.ENotFound {
		return &problem{Type: typeBadNonce, Status: http.StatusBadRequest,
			Detail: "the nonce is unknown, used or expired: retry with the Replay-Nonce of this answer"}
	}
	return err
}

// signer is the key the JWS must verify with: its jwk, or its account's.
func (s *server) signer(r *http.Request, h jose.Header, req *signed, allowJWK, allowKID bool) (*jose.JSONWebKey, error) {
	switch {
	case (h.JSONWebKey == nil) == (h.KeyID == ""):
		return nil, malformed("a JWS has either jwk or kid in its protected header, not both nor neither")
	case h.JSONWebKey != nil && !allowJWK:
		return nil, malformed("this request is signed with an account: kid, not jwk")
	case h.KeyID != "" && !allowKID:
		return nil, malformed("this request is signed with the new key itself: jwk, not kid")
	case h.JSONWebKey != nil:
		if !h.JSONWebKey.IsPublic() || !h.JSONWebKey.Valid() {
			return nil, malformed("the jwk is not a valid public key")
		}
		req.jwk = h.JSONWebKey
		return h.JSONWebKey, nil
	}
	id, ok := strings.CutPrefix(h.KeyID, base(r)+"/account/")
	if !ok {
		return nil, &problem{Type: typeAccountDoesNotExist, Status: http.StatusBadRequest, Detail: "kid " + h.KeyID + " is not an account URL of this CA"}
	}
	acct, err := s.store.ACMEAccount(r.Context(), id)
	if rotor.ErrorCodeOf(err) == rotor.ENotFound {
		return nil, &problem{Type: typeAccountDoesNotExist, Status: http.StatusBadRequest, Detail: "no account " + id}
	}
	if err != nil {
		return nil, err
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(acct.Key); err != nil {
		return nil, rotor.WrapError(rotor.EInternal, err, "account %s's key does not parse", id)
	}
	req.acct = acct
	return &key, nil
}

// thumbprint is a key's RFC 7638 SHA-256 thumbprint, base64url.
func thumbprint(k *jose.JSONWebKey) (string, error) {
	t, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", malformed("the jwk has no thumbprint: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// decode reads a verified payload into v; POST-as-GET (an empty payload)
// is refused where a body is due.
func decode(req *signed, v any) error {
	if len(req.payload) == 0 {
		return malformed("this request needs a JSON payload, not POST-as-GET")
	}
	if err := json.Unmarshal(req.payload, v); err != nil {
		return malformed("the JWS payload is not the JSON object this resource takes")
	}
	return nil
}
