package acme

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/rotor-dev/rotor/internal/httpjson"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rotor-dev/rotor"
)

// accountRequest verifies a request signed by an account (kid) and
// returns it with the caller the account acts as. On failure it has
// answered.
func (s *server) accountRequest(w http.ResponseWriter, r *http.Request) (*signed, rotor.Caller, bool) {
	req, err := s.verify(w, r, false, true)
	if err != nil {
		s.refuse(w, r, rotor.Caller{}, err)
		return nil, rotor.Caller{}, false
	}
	caller, err := s.acme.Caller(r.Context(), r.RemoteAddr, req.acct)
	if err != nil {
		s.write(w, r, err)
		return nil, rotor.Caller{}, false
	}
	return req, caller, true
}

// accountJSON is an account object (RFC 8555 7.1.2). Rotor keeps no
// contacts: the identity is who to ask.
func accountJSON(a rotor.ACMEAccount) map[string]any {
	return map[string]any{"status": a.Status, "contact": []string{}, "createdAt": a.CreatedAt,
		"externalAccountBinding": map[string]string{"kid": a.EABKeyID}}
}

func writeAccount(w http.ResponseWriter, r *http.Request, status int, a rotor.ACMEAccount) {
	w.Header().Set("Location", base(r)+"/account/"+a.ID)
	httpjson.Write(w, status, accountJSON(a))
}

// newAccount handles POST /acme/new-account (RFC 8555 7.3): an existing
// account key answers with its account; a new one must carry an external
// account binding, which binds it to the EAB key's identity and spends
// the key.
func (s *server) newAccount(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(w, r, true, false)
	var body struct {
		OnlyReturnExisting bool            `json:"onlyReturnExisting"`
		EAB                json.RawMessage `json:"externalAccountBinding"`
	}
	if err == nil {
		err = decode(req, &body)
	}
	var thumb string
	if err == nil {
		thumb, err = thumbprint(req.jwk)
	}
	if err != nil {
		s.refuse(w, r, rotor.Caller{}, err)
		return
	}
	switch acct, err := s.store.ACMEAccountByKey(r.Context(), thumb); {
	case err == nil:
		writeAccount(w, r, http.StatusOK, acct)
		return
	case rotor.ErrorCodeOf(err) != rotor.ENotFound:
		s.write(w, r, err)
		return
	case body.OnlyReturnExisting:
		s.refuse(w, r, rotor.Caller{}, &problem{Type: typeAccountDoesNotExist, Status: http.StatusBadRequest,
			Detail: "no account has this key"})
		return
	case body.EAB == nil:
		s.refuse(w, r, rotor.Caller{}, &problem{Type: typeExternalAccountRequired, Status: http.StatusForbidden,
			Detail: "this CA needs an external account binding: rotor-ca acme eab create gives its key ID and HMAC key"})
		return
	}
	jwkJSON, _ := req.jwk.MarshalJSON() // a key that verified a signature marshals
	acct, err := s.bind(r, req, body.EAB, rotor.ACMEAccount{Key: jwkJSON, KeyThumbprint: thumb})
	if err != nil {
		s.refuse(w, r, rotor.Caller{}, err)
		return
	}
	writeAccount(w, r, http.StatusCreated, acct)
}

// bind checks the external account binding (RFC 8555 7.3.4): a JWS with
// HS256, the EAB key ID as kid and newAccount's url, no nonce, whose
// payload is the account key; the core then binds and spends the key.
func (s *server) bind(r *http.Request, req *signed, raw json.RawMessage, acct rotor.ACMEAccount) (rotor.ACMEAccount, error) {
	jws, h, err := parseJWS(raw, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return acct, err
	}
	if u, _ := h.ExtraHeaders["url"].(string); u != req.url || h.Nonce != "" || h.JSONWebKey != nil {
		return acct, malformed("the external account binding must name newAccount's url and carry no nonce or jwk")
	}
	if !rotor.ValidEABKeyID(h.KeyID) {
		return acct, unauthorized("the external account binding's kid is not an EAB key ID of this CA")
	}
	check := func(key []byte) error {
		payload, err := jws.Verify(key)
		if err != nil {
			return err
		}
		var inner jose.JSONWebKey
		if err := inner.UnmarshalJSON(payload); err != nil {
			return err
		}
		if t, err := thumbprint(&inner); err != nil || t != acct.KeyThumbprint {
			return malformed("the external account binding signs another key than the account's")
		}
		return nil
	}
	return s.acme.BindAccount(r.Context(), r.RemoteAddr, h.KeyID, check, acct)
}

// account handles POST /acme/account/{id}: POST-as-GET, an update (no
// field Rotor keeps), or deactivation (RFC 8555 7.3.6).
func (s *server) account(w http.ResponseWriter, r *http.Request) {
	req, _, ok := s.accountRequest(w, r)
	if !ok {
		return
	}
	acct := req.acct
	if req.url != base(r)+"/account/"+acct.ID {
		s.refuse(w, r, rotor.Caller{}, unauthorized("an account may only read or change itself"))
		return
	}
	var body struct {
		Status string `json:"status"`
	}
	if len(req.payload) > 0 {
		if err := decode(req, &body); err != nil {
			s.write(w, r, err)
			return
		}
	}
	switch body.Status {
	case "":
	case rotor.ACMEStatusDeactivated:
		var err error
		if acct, err = s.acme.Deactivate(r.Context(), r.RemoteAddr, acct); err != nil {
			s.write(w, r, err)
			return
		}
	default:
		s.write(w, r, malformed("an account's status can only be changed to deactivated"))
		return
	}
	writeAccount(w, r, http.StatusOK, acct)
}

// keyChange handles POST /acme/key-change (RFC 8555 7.3.5): the payload is
// a JWS by the new key over the account URL and the old key.
func (s *server) keyChange(w http.ResponseWriter, r *http.Request) {
	req, _, ok := s.accountRequest(w, r)
	if !ok {
		return
	}
	acct, err := s.rollOver(r, req)
	if rotor.ErrorCodeOf(err) == rotor.EConflict {
		if other, e := s.store.ACMEAccountByKey(r.Context(), acct.KeyThumbprint); e == nil {
			w.Header().Set("Location", base(r)+"/account/"+other.ID)
		}
	}
	if err != nil {
		s.write(w, r, err)
		return
	}
	writeAccount(w, r, http.StatusOK, acct)
}

func (s *server) rollOver(r *http.Request, req *signed) (rotor.ACMEAccount, error) {
	jws, h, err := parseJWS(req.payload, accountAlgs)
	if err != nil {
		return req.acct, err
	}
	if u, _ := h.ExtraHeaders["url"].(string); u != req.url || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		return req.acct, malformed("the inner JWS of a key change names keyChange's url and the new key as jwk")
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return req.acct, malformed("the inner JWS does not verify with the new key")
	}
	var body struct {
		Account string          `json:"account"`
		OldKey  json.RawMessage `json:"oldKey"`
	}
	if err := json.Unmarshal(payload, &body); err != nil || body.Account != base(r)+"/account/"+req.acct.ID {
		return req.acct, malformed("the key change's account is not the account that signed it")
	}
	var old jose.JSONWebKey
	if err := old.UnmarshalJSON(body.OldKey); err != nil {
		return req.acct, malformed("the key change's oldKey is not a JWK")
	}
	oldThumb, err := thumbprint(&old)
	if err != nil || oldThumb != req.acct.KeyThumbprint {
		return req.acct, malformed("the key change's oldKey is not the account's key")
	}
	newThumb, err := thumbprint(h.JSONWebKey)
	if err != nil {
		return req.acct, err
	}
	newJSON, _ := h.JSONWebKey.MarshalJSON()
	if bytes.Equal(newJSON, req.acct.Key) {
		return req.acct, malformed("the new key is the account's key already")
	}
	return s.acme.ChangeKey(r.Context(), r.RemoteAddr, req.acct, newJSON, newThumb)
}
