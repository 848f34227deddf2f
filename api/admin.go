package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rotor-dev/rotor/internal/httpjson"

	"github.com/go-chi/chi/v5"

	"github.com/rotor-dev/rotor"
)

// refuseFor records a refusal of caller's request and answers it.
func (s *server) refuseFor(w http.ResponseWriter, r *http.Request, caller rotor.Caller, err error) {
	s.refuse(w, r, s.cfg.CA.Refuse(r.Context(), r.RemoteAddr, caller, err))
}

// authenticate reads the credentials and authenticates a caller, workload
// or admin; refusals are recorded by the CA.
func (s *server) authenticate(w http.ResponseWriter, r *http.Request) (rotor.Caller, bool) {
	cred, err := credentials(r)
	if err != nil {
		s.refuseFor(w, r, rotor.Caller{}, err)
		return rotor.Caller{}, false
	}
	caller, err := s.cfg.CA.Authenticate(r.Context(), cred)
	if err != nil {
		s.refuse(w, r, err)
		return rotor.Caller{}, false
	}
	return caller, true
}

// authenticateAdmin is authenticate for admin actions: a workload is
// refused with 403.
func (s *server) authenticateAdmin(w http.ResponseWriter, r *http.Request) (rotor.Caller, bool) {
	cred, err := credentials(r)
	if err != nil {
		s.refuseFor(w, r, rotor.Caller{}, err)
		return rotor.Caller{}, false
	}
	caller, err := s.cfg.CA.AuthenticateAdmin(r.Context(), cred)
	if err != nil {
		s.refuse(w, r, err)
		return rotor.Caller{}, false
	}
	return caller, true
}

// pathSerial reads {serial}: openssl prints serials in upper case, so
// either is taken, and lower case is answered.
func pathSerial(r *http.Request) (string, error) {
	serial := strings.ToLower(chi.URLParam(r, "serial"))
	if !rotor.IsLowerHex(serial, 1, rotor.MaxSerialHex) {
		return "", rotor.Errorf(rotor.EInvalid, "serial must be 1 to %d hex digits", rotor.MaxSerialHex)
	}
	return serial, nil
}

// getCertificate handles GET /v1/certificates/{serial}: the record of a
// certificate, for its own identity or an admin. Anyone else hears the
// same 403 whether or not the serial exists.
func (s *server) getCertificate(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	serial, err := pathSerial(r)
	if err != nil {
		s.refuseFor(w, r, caller, err)
		return
	}
	st, err := s.cfg.Certificates.CertificateStatus(r.Context(), serial)
	notYours := rotor.Errorf(rotor.EForbidden, "certificate %s is not one of %s's", serial, caller.Identity)
	switch {
	case !caller.Admin && (err == nil && st.Issuance.Identity != caller.Identity || rotor.ErrorCodeOf(err) == rotor.ENotFound):
		s.refuseFor(w, r, caller, notYours)
		return
	case err != nil:
		s.refuseFor(w, r, caller, err)
		return
	}
	rec := rotor.NewCertificateRecord(st.Issuance, s.trustDomain)
	rec.Revoked = rotor.NewRevocationRecord(st.Revocation)
	httpjson.Write(w, http.StatusOK, rec)
}

// listCertificates handles GET /v1/certificates for admins: a page of
// issuances, newest first, filtered by identity, namespace and activity.
func (s *server) listCertificates(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.authenticateAdmin(w, r)
	if !ok {
		return
	}
	q, err := issuanceQuery(r.URL.Query())
	if err != nil {
		s.refuseFor(w, r, caller, err)
		return
	}
	q.Now = s.cfg.Now()
	page, err := s.cfg.Certificates.Issuances(r.Context(), q)
	if err != nil {
		s.refuseFor(w, r, caller, err)
		return
	}
	out := rotor.CertificateList{Certificates: make([]rotor.CertificateRecord, len(page.Issuances)), NextCursor: page.Next}
	for i, iss := range page.Issuances {
		out.Certificates[i] = rotor.NewCertificateRecord(iss, s.trustDomain)
	}
	if page.Next != "" {
		next := r.URL.Query()
		next.Set("cursor", page.Next)
		w.Header().Set("Link", "</v1/certificates?"+next.Encode()+`>; rel="next"`)
	}
	httpjson.Write(w, http.StatusOK, out)
}

// issuanceQuery reads the list's query parameters strictly: an unknown or
// repeated parameter is refused rather than ignored.
func issuanceQuery(v url.Values) (rotor.IssuanceQuery, error) {
	var q rotor.IssuanceQuery
	for k, vals := range v {
		if len(vals) != 1 {
			return q, rotor.Errorf(rotor.EInvalid, "query parameter %s is given %d times", k, len(vals))
		}
		val := vals[0]
		var err error
		switch k {
		case "identity":
			var id rotor.Identity
			if id, err = rotor.ParseIdentity(val); err == nil {
				q.Namespace, q.ServiceAccount = id.Namespace, id.ServiceAccount
			}
		case "namespace":
			q.Namespace = val
		case "active":
			q.Active, err = strconv.ParseBool(val)
		case "limit":
			q.Limit, err = strconv.Atoi(val)
			if err == nil && (q.Limit < 1 || q.Limit > rotor.MaxPage) {
				err = rotor.Errorf(rotor.EInvalid, "limit must be from 1 to %d", rotor.MaxPage)
			}
		case "cursor":
			q.After = val
		default:
			return q, rotor.Errorf(rotor.EInvalid, "unknown query parameter %q: use identity, namespace, active, limit, cursor", k)
		}
		if err != nil {
			return q, rotor.WrapError(rotor.EInvalid, err, "query parameter %s=%q is not valid", k, val)
		}
	}
	if v.Has("identity") && v.Has("namespace") {
		return q, rotor.Errorf(rotor.EInvalid, "give identity or namespace, not both")
	}
	return q, nil
}

// pathIdentity reads {namespace}/{service_account}.
func pathIdentity(r *http.Request) (rotor.Identity, error) {
	id := rotor.Identity{Namespace: chi.URLParam(r, "namespace"), ServiceAccount: chi.URLParam(r, "service_account")}
	return id, id.Validate()
}

// adminBody authenticates an admin and reads an admin action's body into
// fields, refusing (and recording) whatever fails.
func (s *server) adminBody(w http.ResponseWriter, r *http.Request, shape string, fields ...field) (rotor.Caller, bool) {
	caller, ok := s.authenticateAdmin(w, r)
	if !ok {
		return caller, false
	}
	body, err := s.readJSONBody(w, r)
	if err == nil {
		err = decodeObject(body, shape, fields...)
	}
	if err != nil {
		s.refuseFor(w, r, caller, err)
		return caller, false
	}
	return caller, true
}

// readJSONBody reads a body that must be JSON.
func (s *server) readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if mt := mediaType(r); mt != rotor.MediaJSON {
		return nil, rotor.Errorf(rotor.EUnsupportedMedia, "send the body as application/json")
	}
	return s.readBody(w, r)
}

// denyIdentity handles POST /v1/identities/{namespace}/{service_account}/deny.
func (s *server) denyIdentity(w http.ResponseWriter, r *http.Request) {
	var reason string
	var revoke bool
	caller, ok := s.adminBody(w, r, `{"reason": text, "revoke_certificates": boolean}`,
		field{"reason", &reason}, field{"revoke_certificates", &revoke})
	if !ok {
		return
	}
	id, err := pathIdentity(r)
	if err == nil {
		var revoked []string
		if revoked, err = s.cfg.CA.DenyIdentity(r.Context(), caller, r.RemoteAddr, id, reason, revoke); err == nil {
			httpjson.Write(w, http.StatusOK, rotor.DenyResult{Namespace: id.Namespace, ServiceAccount: id.ServiceAccount,
				Denied: true, Revoked: nonNil(revoked)})
			return
		}
	}
	s.refuseFor(w, r, caller, err)
}

// allowIdentity handles POST /v1/identities/{namespace}/{service_account}/allow.
func (s *server) allowIdentity(w http.ResponseWriter, r *http.Request) {
	var reason string
	caller, ok := s.adminBody(w, r, `{"reason": text}`, field{"reason", &reason})
	if !ok {
		return
	}
	id, err := pathIdentity(r)
	if err == nil {
		if err = s.cfg.CA.AllowIdentity(r.Context(), caller, r.RemoteAddr, id, reason); err == nil {
			httpjson.Write(w, http.StatusOK, rotor.DenyResult{Namespace: id.Namespace, ServiceAccount: id.ServiceAccount,
				Revoked: []string{}})
			return
		}
	}
	s.refuseFor(w, r, caller, err)
}

// revokeCertificate handles POST /v1/certificates/{serial}/revoke.
func (s *server) revokeCertificate(w http.ResponseWriter, r *http.Request) {
	var reasonName, comment string
	caller, ok := s.adminBody(w, r, `{"reason": RFC 5280 reason name, "comment": text}`,
		field{"reason", &reasonName}, field{"comment", &comment})
	if !ok {
		return
	}
	serial, err := pathSerial(r)
	var reason rotor.RevocationReason
	if err == nil {
		reason, err = rotor.ParseRevocationReason(reasonName)
	}
	if err == nil {
		err = s.cfg.CA.RevokeCertificate(r.Context(), caller, r.RemoteAddr, serial, reason, comment)
	}
	if err != nil {
		s.refuseFor(w, r, caller, err)
		return
	}
	st, err := s.cfg.Certificates.CertificateStatus(r.Context(), serial)
	if err != nil || st.Revocation == nil {
		// Committed, but not readable back: say so rather than guess.
		s.problem.write(w, r, rotor.Errorf(rotor.EStoreUnavailable, "certificate %s was revoked but its record could not be read back", serial))
		return
	}
	httpjson.Write(w, http.StatusOK, rotor.RevokeResult{Serial: serial, RevocationRecord: *rotor.NewRevocationRecord(st.Revocation)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// errNoCheckpoints answers checkpoint requests to a CA without a key.
var errNoCheckpoints = rotor.Errorf(rotor.ENotFound, "this CA signs no audit checkpoints: it has no checkpoint key (rotor-ca init makes one)")

// getCheckpoint handles GET /v1/audit/checkpoint: the newest signed
// checkpoint, public like a transparency log's, for auditors to keep.
func (s *server) getCheckpoint(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Checkpoints == nil {
		s.problem.write(w, r, errNoCheckpoints)
		return
	}
	msg, err := s.cfg.Checkpoints.Latest(r.Context())
	if err != nil {
		s.problem.write(w, r, err)
		return
	}
	writeNote(w, http.StatusOK, msg)
}

// signCheckpoint handles POST /v1/audit/checkpoint: admins sign the head
// now, e.g. before and after a maintenance window.
func (s *server) signCheckpoint(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.authenticateAdmin(w, r)
	if !ok {
		return
	}
	if s.cfg.Checkpoints == nil {
		s.refuseFor(w, r, caller, errNoCheckpoints)
		return
	}
	msg, err := s.cfg.Checkpoints.SignNow(r.Context())
	if err != nil {
		s.refuseFor(w, r, caller, err)
		return
	}
	writeNote(w, http.StatusCreated, msg)
}

func writeNote(w http.ResponseWriter, status int, msg []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(msg)
}
