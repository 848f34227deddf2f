package acme

import (
	"encoding/base64"
	"net/http"
	"time"

	"github.com/rotor-dev/rotor/internal/httpjson"

	"github.com/go-chi/chi/v5"

	"github.com/rotor-dev/rotor"
)

type identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// orderJSON is an order object (RFC 8555 7.1.3).
func orderJSON(r *http.Request, o rotor.ACMEOrder) map[string]any {
	b := base(r)
	ids := make([]identifier, len(o.DNSNames))
	for i, n := range o.DNSNames {
		ids[i] = identifier{"dns", n}
	}
	m := map[string]any{"status": o.Status, "expires": o.Expires, "identifiers": ids,
		"authorizations": []string{b + "/authz/" + o.ID}, "finalize": b + "/order/" + o.ID + "/finalize"}
	if o.Serial != "" {
		m["certificate"] = b + "/cert/" + o.Serial
	}
	if o.Replaces != "" {
		m["replaces"] = o.Replaces
	}
	return m
}

// newOrder handles POST /acme/new-order (RFC 8555 7.4): the identifiers
// must be the account identity's DNS name (rejectedIdentifier otherwise);
// the order is ready at once.
func (s *server) newOrder(w http.ResponseWriter, r *http.Request) {
	req, caller, ok := s.accountRequest(w, r)
	if !ok {
		return
	}
	var body struct {
		Identifiers []identifier `json:"identifiers"`
		NotBefore   string       `json:"notBefore"`
		NotAfter    string       `json:"notAfter"`
		Replaces    string       `json:"replaces"`
	}
	err := decode(req, &body)
	if err == nil && (body.NotBefore != "" || body.NotAfter != "") {
		err = malformed("notBefore and notAfter are not accepted: the CA's policy sets every certificate's lifetime")
	}
	var replaces string
	if err == nil && body.Replaces != "" {
		_, replaces, err = parseCertID(body.Replaces)
	}
	if err != nil {
		s.refuse(w, r, caller, err)
		return
	}
	names := make([]string, len(body.Identifiers))
	for i, id := range body.Identifiers {
		names[i] = id.Value
		if id.Type != "dns" {
			names[i] = id.Type + ":" + id.Value // never an identity's name: refused by the core
		}
	}
	o, err := s.acme.NewOrder(r.Context(), r.RemoteAddr, caller, req.acct, names, replaces)
	if err != nil {
		s.writeAs(w, r, err, map[rotor.ErrorCode]string{rotor.EForbidden: typeRejectedIdentifier,
			rotor.EConflict: typeAlreadyReplaced})
		return
	}
	w.Header().Set("Location", base(r)+"/order/"+o.ID)
	httpjson.Write(w, http.StatusCreated, orderJSON(r, o))
}

// ownOrder is the order named in the path, if it is the account's.
func (s *server) ownOrder(r *http.Request, acct rotor.ACMEAccount) (rotor.ACMEOrder, error) {
	o, err := s.store.ACMEOrder(r.Context(), chi.URLParam(r, "id"))
	if err == nil && o.AccountID != acct.ID || rotor.ErrorCodeOf(err) == rotor.ENotFound {
		return o, &problem{Type: typeMalformed, Status: http.StatusNotFound, Detail: "this account has no such order"}
	}
	return o, err
}

// order handles POST-as-GET /acme/order/{id}.
func (s *server) order(w http.ResponseWriter, r *http.Request) {
	if o, _, _, ok := s.orderRequest(w, r); ok {
		httpjson.Write(w, http.StatusOK, orderJSON(r, o))
	}
}

// orderRequest verifies an account's request about the order in the
// path, and returns the order. On failure it has answered.
func (s *server) orderRequest(w http.ResponseWriter, r *http.Request) (rotor.ACMEOrder, *signed, rotor.Caller, bool) {
	req, caller, ok := s.accountRequest(w, r)
	if !ok {
		return rotor.ACMEOrder{}, nil, caller, false
	}
	o, err := s.ownOrder(r, req.acct)
	if err != nil {
		s.refuse(w, r, caller, err)
		return o, nil, caller, false
	}
	return o, req, caller, true
}

// finalize handles POST /acme/order/{id}/finalize (RFC 8555 7.4): the
// certificate is issued and audited before the order turns valid.
func (s *server) finalize(w http.ResponseWriter, r *http.Request) {
	o, req, caller, ok := s.orderRequest(w, r)
	if !ok {
		return
	}
	var body struct {
		CSR string `json:"csr"`
	}
	err := decode(req, &body)
	var der []byte
	if err == nil {
		if der, err = base64.RawURLEncoding.DecodeString(body.CSR); err != nil {
			err = &problem{Type: typeBadCSR, Status: http.StatusBadRequest, Detail: "csr is not base64url DER"}
		}
	}
	if err != nil {
		s.refuse(w, r, caller, err)
		return
	}
	iss, _, err := s.acme.Finalize(r.Context(), r.RemoteAddr, caller, o, der)
	if err != nil {
		s.writeAs(w, r, err, map[rotor.ErrorCode]string{rotor.EForbidden: typeBadCSR, rotor.EConflict: typeOrderNotReady})
		return
	}
	o.Status, o.Serial = rotor.ACMEStatusValid, iss.Serial
	w.Header().Set("Location", base(r)+"/order/"+o.ID)
	httpjson.Write(w, http.StatusOK, orderJSON(r, o))
}

// authorization handles POST-as-GET /acme/authz/{id}: an order's one
// authorization, valid from the start since the account binding proved
// the identity, with one valid challenge (some clients choke on none).
func (s *server) authorization(w http.ResponseWriter, r *http.Request) {
	o, _, _, ok := s.orderRequest(w, r)
	if !ok {
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"identifier": identifier{"dns", o.DNSNames[0]},
		"status": rotor.ACMEStatusValid, "expires": o.Expires, "challenges": []any{challengeJSON(r, o)}})
}

func challengeJSON(r *http.Request, o rotor.ACMEOrder) map[string]any {
	return map[string]any{"type": "http-01", "url": base(r) + "/chall/" + o.ID, "status": rotor.ACMEStatusValid,
		"token": o.ID, "validated": o.CreatedAt.Format(time.RFC3339)}
}

// challenge handles POST /acme/chall/{id}: the challenge is valid
// already, so responding to it changes nothing.
func (s *server) challenge(w http.ResponseWriter, r *http.Request) {
	o, _, _, ok := s.orderRequest(w, r)
	if !ok {
		return
	}
	w.Header().Add("Link", "<"+base(r)+"/authz/"+o.ID+">;rel=\"up\"")
	httpjson.Write(w, http.StatusOK, challengeJSON(r, o))
}
