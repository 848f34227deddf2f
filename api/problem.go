package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rotor-dev/rotor"
)

// problemMediaType is RFC 9457's media type for problem details.
const problemMediaType = "application/problem+json"

// statusEntry is what one error code becomes on the wire.
type statusEntry struct {
	Status int
	Title  string
	// RetryAfter, when non-zero, is sent as Retry-After in seconds: the code
	// is an outage or a limit that passes, so clients should come back.
	RetryAfter int
}

// statusTable is the one mapping from error codes to HTTP. Every code in
// rotor.ErrorCodes has a row (TestProblemTable holds it to that); a code
// missing here is answered as internal.
var statusTable = map[rotor.ErrorCode]statusEntry{
	rotor.EInvalid:           {http.StatusBadRequest, "Invalid request", 0},
	rotor.EBadCSR:            {http.StatusBadRequest, "Bad certificate signing request", 0},
	rotor.EUnauthenticated:   {http.StatusUnauthorized, "Unauthenticated", 0},
	rotor.EForbidden:         {http.StatusForbidden, "Identity not allowed", 0},
	rotor.ENotFound:          {http.StatusNotFound, "Not found", 0},
	rotor.ETooLarge:          {http.StatusRequestEntityTooLarge, "Request too large", 0},
	rotor.EUnsupportedMedia:  {http.StatusUnsupportedMediaType, "Unsupported media type", 0},
	rotor.ERateLimited:       {http.StatusTooManyRequests, "Rate limited", 2},
	rotor.EStoreUnavailable:  {http.StatusServiceUnavailable, "Store unavailable", 5},
	rotor.ESignerUnavailable: {http.StatusServiceUnavailable, "Signer unavailable", 5},
	rotor.EAuthUnavailable:   {http.StatusServiceUnavailable, "Authenticator unavailable", 5},
	rotor.EInternal:          {http.StatusInternalServerError, "Internal error", 0},
}

// entryFor returns the table row of code, falling back to internal so an
// unmapped code can never leak as a 200 or an empty status.
func entryFor(code rotor.ErrorCode) (rotor.ErrorCode, statusEntry) {
	if e, ok := statusTable[code]; ok {
		return code, e
	}
	return rotor.EInternal, statusTable[rotor.EInternal]
}

// problemWriter answers errors; it holds the logger so internal causes are
// recorded where the response is decided.
type problemWriter struct {
	log *slog.Logger
}

// write answers err as problem+json with the status of its code.
func (p problemWriter) write(w http.ResponseWriter, r *http.Request, err error) {
	p.writeStatus(w, r, err, 0)
}

// writeStatus is write with the table's status replaced, for the one case
// HTTP needs a status no code has (405 for an unknown method).
func (p problemWriter) writeStatus(w http.ResponseWriter, r *http.Request, err error, status int) {
	code, entry := entryFor(rotor.ErrorCodeOf(err))
	if status == 0 {
		status = entry.Status
	}
	prob := rotor.Problem{Type: code.ProblemType(), Title: entry.Title, Status: status,
		Detail: rotor.ErrorMessageOf(err), Instance: newInstance()}
	switch {
	case status >= 500:
		// The cause (a driver error, a panic value) is for operators only;
		// the instance ties the generic answer to this log line.
		p.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("code", string(code)),
			slog.String("instance", prob.Instance), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("error", err))
	default:
		p.log.LogAttrs(r.Context(), slog.LevelDebug, "request refused", slog.String("code", string(code)),
			slog.String("instance", prob.Instance), slog.String("error", err.Error()))
	}
	h := w.Header()
	h.Set("Content-Type", problemMediaType)
	h.Set("Cache-Control", "no-store")
	if entry.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(entry.RetryAfter))
	}
	if code == rotor.EUnauthenticated {
		h.Set("WWW-Authenticate", `Bearer realm="rotor"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(prob)
}

// newInstance names one problem occurrence, so an operator can find the log
// line of a generic 500 a client reports.
func newInstance() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "urn:rotor:request:" + hex.EncodeToString(b)
}

// notFound answers unknown paths.
func (p problemWriter) notFound(w http.ResponseWriter, r *http.Request) {
	p.write(w, r, rotor.Errorf(rotor.ENotFound, "no route %s", r.URL.Path))
}

// methodNotAllowed answers a known path with a method it does not serve:
// 405 with Allow, typed invalid-request since no code means "wrong method".
func (p problemWriter) methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
			http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			if routes.Match(chi.NewRouteContext(), m, r.URL.Path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		p.writeStatus(w, r, rotor.Errorf(rotor.EInvalid, "method %s is not allowed on %s", r.Method, r.URL.Path),
			http.StatusMethodNotAllowed)
	}
}
