package acme

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/rotor-dev/rotor"
)

// ACME error types (RFC 8555 6.7, RFC 9773 7.4).
const (
	errPrefix                   = "urn:ietf:params:acme:error:"
	typeMalformed               = errPrefix + "malformed"
	typeBadNonce                = errPrefix + "badNonce"
	typeBadSignatureAlgorithm   = errPrefix + "badSignatureAlgorithm"
	typeBadCSR                  = errPrefix + "badCSR"
	typeUnauthorized            = errPrefix + "unauthorized"
	typeAccountDoesNotExist     = errPrefix + "accountDoesNotExist"
	typeExternalAccountRequired = errPrefix + "externalAccountRequired"
	typeRejectedIdentifier      = errPrefix + "rejectedIdentifier"
	typeOrderNotReady           = errPrefix + "orderNotReady"
	typeAlreadyRevoked          = errPrefix + "alreadyRevoked"
	typeAlreadyReplaced         = errPrefix + "alreadyReplaced"
	typeBadRevocationReason     = errPrefix + "badRevocationReason"
	typeRateLimited             = errPrefix + "rateLimited"
	typeServerInternal          = errPrefix + "serverInternal"
)

// problem is an ACME problem document. The adapter makes one for what it
// decides itself (a malformed JWS, a bad nonce); the core's refusals are
// *rotor.Error values, turned into problems by problemOf.
type problem struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	Status int    `json:"status"`
	// Err is the cause, for the log only.
	Err error `json:"-"`
}

func (p *problem) Error() string { return p.Type + ": " + p.Detail }

func (p *problem) Unwrap() error { return p.Err }

func malformed(detail string) *problem {
	return &problem{Type: typeMalformed, Status: http.StatusBadRequest, Detail: detail}
}

func unauthorized(detail string) *problem {
	return &problem{Type: typeUnauthorized, Status: http.StatusForbidden, Detail: detail}
}

// coreTypes are the ACME types of the core's codes; where one code means
// different things in different requests (EForbidden is a rejected
// identifier in newOrder, a refusal elsewhere) the handler says so.
var coreTypes = map[rotor.ErrorCode]string{
	rotor.EInvalid: typeMalformed, rotor.EBadCSR: typeBadCSR, rotor.EUnauthenticated: typeUnauthorized,
	rotor.EForbidden: typeUnauthorized, rotor.EDenied: typeUnauthorized, rotor.EConflict: typeMalformed,
	rotor.ENotFound: typeMalformed, rotor.ERateLimited: typeRateLimited,
}

// typeStatus are the statuses of types whose code's status would differ
// from what clients (and Boulder and Pebble) answer them with:
// unauthorized is 403 whether the core said EUnauthenticated (401) or
// EForbidden, as the adapter's own unauthorized problems are.
var typeStatus = map[string]int{typeOrderNotReady: http.StatusForbidden, typeRejectedIdentifier: http.StatusBadRequest,
	typeAlreadyRevoked: http.StatusBadRequest, typeBadCSR: http.StatusBadRequest, typeUnauthorized: http.StatusForbidden}

// problemOf is err as a problem: itself if it is one, else from its core
// code, with types overriding coreTypes for this request.
func problemOf(err error, types map[rotor.ErrorCode]string) *problem {
	var p *problem
	if errors.As(err, &p) {
		return p
	}
	code := rotor.ErrorCodeOf(err)
	typ, ok := types[code]
	if !ok {
		typ, ok = coreTypes[code]
	}
	status := code.HTTPStatus()
	if !ok || status == 0 || status >= 500 {
		typ = typeServerInternal
	}
	if st, ok := typeStatus[typ]; ok {
		status = st
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return &problem{Type: typ, Status: status, Detail: rotor.ErrorMessageOf(err), Err: err}
}

// write answers err as a problem document.
func (s *server) write(w http.ResponseWriter, r *http.Request, err error) {
	s.writeAs(w, r, err, nil)
}

// writeAs answers err as a problem document, typed by types (see
// problemOf). Internal causes are logged, never sent.
func (s *server) writeAs(w http.ResponseWriter, r *http.Request, err error, types map[rotor.ErrorCode]string) {
	p := problemOf(err, types)
	level := slog.LevelDebug
	if p.Status >= 500 && rotor.ErrorCodeOf(err).ServerFault() && !rotor.HungUp(r.Context()) {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "ACME request refused", "type", p.Type, "path", r.URL.Path, "error", err)
	h := w.Header()
	if ra := rotor.RetryAfterOf(err); ra > 0 && rotor.ErrorCodeOf(err).Retryable() {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(ra.Seconds()))))
	}
	h.Set("Content-Type", rotor.MediaProblem)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// refuse records a refusal the adapter decided (a *problem: a JWS that
// does not verify, an unknown account) for caller (zero if unknown) and
// answers it. The core's refusals are recorded where they are decided.
func (s *server) refuse(w http.ResponseWriter, r *http.Request, caller rotor.Caller, err error) {
	var p *problem
	if errors.As(err, &p) && p.Type != typeBadNonce {
		code := rotor.EInvalid
		if p.Status == http.StatusForbidden || p.Type == typeAccountDoesNotExist {
			code = rotor.EUnauthenticated
		}
		_ = s.acme.CA.Refuse(r.Context(), r.RemoteAddr, caller, rotor.Errorf(code, "ACME: %s", p.Detail))
	}
	s.write(w, r, err)
}
