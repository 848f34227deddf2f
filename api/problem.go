package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rotor-dev/rotor"
)

// problemWriter answers errors; it holds the logger so internal causes are
// recorded where the response is decided.
type problemWriter struct {
	log *slog.Logger
}

// answerCode is the code a server answers err with: its own, unless that is
// one only clients decide (no HTTP status), which the server answers as
// internal.
func answerCode(err error) rotor.ErrorCode {
	if code := rotor.ErrorCodeOf(err); code.HTTPStatus() != 0 {
		return code
	}
	return rotor.EInternal
}

// write answers err as problem+json with the status of its code (the core's
// code table).
func (p problemWriter) write(w http.ResponseWriter, r *http.Request, err error) {
	code := answerCode(err)
	status := code.HTTPStatus()
	prob := rotor.Problem{Type: code.ProblemType(), Title: code.Title(), Status: status,
		Detail: rotor.ErrorMessageOf(err), Instance: newInstance()}
	switch {
	case rotor.HungUp(r.Context()):
		// Nobody reads this answer, and nothing is down.
		p.log.LogAttrs(r.Context(), slog.LevelDebug, "client hung up before the answer",
			slog.String(rotor.LogEvent, EventAbandoned), slog.String("code", string(code)),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	case code.ServerFault():
		// The cause (a driver error, a panic value) is for operators only;
		// the instance ties the generic answer to this log line.
		p.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("code", string(code)),
			slog.String("instance", prob.Instance), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("error", err))
	default:
		// Refusals, and shedding (see ServerFault): an ERROR line per shed
		// request would bury the log and cost CPU when it is scarcest.
		p.log.LogAttrs(r.Context(), slog.LevelDebug, "request refused", slog.String("code", string(code)),
			slog.String("instance", prob.Instance), slog.String("error", err.Error()))
	}
	h := w.Header()
	h.Set("Content-Type", rotor.MediaProblem)
	h.Set("Cache-Control", "no-store")
	if ra := retryAfter(err, code); ra > 0 {
		h.Set("Retry-After", retryAfterSeconds(ra))
	}
	if code == rotor.EUnauthenticated {
		h.Set("WWW-Authenticate", `Bearer realm="rotor"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(prob)
}

// retryAfter is the wait to send with err: its own (a limiter's next
// token) if it has one, else its code's.
func retryAfter(err error, code rotor.ErrorCode) time.Duration {
	if ra := rotor.RetryAfterOf(err); ra > 0 && code.Retryable() {
		return ra
	}
	return code.RetryAfter()
}

// retryAfterSeconds is d as Retry-After's delay-seconds, rounded up so a
// client never comes back early.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
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
// 405 with Allow.
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
		p.write(w, r, rotor.Errorf(rotor.EMethodNotAllowed, "method %s is not allowed on %s", r.Method, r.URL.Path))
	}
}
