package rotor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrorCode is a stable, machine-readable cause. Each code has one row in
// the code table below: the HTTP status and title the API answers with,
// and whether a client may retry. The server writes problems from that
// table and the client reads them back through it, so both sides decide
// with errors.As and the table, never by matching message text.
type ErrorCode string

// Error codes. Their string values appear in problem types and in the audit
// table's refusal reasons, so they never change.
const (
	EInvalid           ErrorCode = "invalid-request"      // malformed request
	EBadCSR            ErrorCode = "bad-csr"              // CSR unparsable, bad signature, weak key
	EUnauthenticated   ErrorCode = "unauthenticated"      // no or bad credentials
	EForbidden         ErrorCode = "identity-not-allowed" // names or usage the caller may not have
	EDenied            ErrorCode = "identity-denied"      // the identity is on the CA's deny list
	EConflict          ErrorCode = "conflict"             // the change is made already: revoked, denied
	ENotFound          ErrorCode = "not-found"
	EMethodNotAllowed  ErrorCode = "method-not-allowed"
	ETooLarge          ErrorCode = "too-large"
	EUnsupportedMedia  ErrorCode = "unsupported-media-type"
	ERateLimited       ErrorCode = "rate-limited"
	EOverloaded        ErrorCode = "overloaded" // issuances in flight at the CA's cap
	EStoreUnavailable  ErrorCode = "store-unavailable"
	ESignerUnavailable ErrorCode = "signer-unavailable"
	EAuthUnavailable   ErrorCode = "authenticator-unavailable" // e.g. TokenReview or JWKS unreachable
	EInternal          ErrorCode = "internal"

	// The codes below are decided by a client, never sent by the CA.

	// ECAUnreachable: no answer came back (connection refused, reset,
	// timeout), or a gateway in front of the CA said it could not reach it.
	ECAUnreachable ErrorCode = "ca-unreachable"
	// ECAUntrusted: the CA answered, but its serving certificate did not
	// verify against the configured roots, or its bundle lacks the pinned
	// root. Retrying the same way cannot help; the configuration must change.
	ECAUntrusted ErrorCode = "ca-untrusted"
)

// codeInfo is one row of the code table.
type codeInfo struct {
	status int // 0: a client-side code, never an HTTP answer
	title  string
	// retryAfter, when non-zero, is sent as Retry-After: the code is an
	// outage or a limit that passes.
	retryAfter time.Duration
	retryable  bool
}

// codeTable is the one mapping from codes to HTTP and to "retry or not".
var codeTable = map[ErrorCode]codeInfo{
	EInvalid:           {400, "Invalid request", 0, false},
	EBadCSR:            {400, "Bad certificate signing request", 0, false},
	EUnauthenticated:   {401, "Unauthenticated", 0, false},
	EForbidden:         {403, "Identity not allowed", 0, false},
	EDenied:            {403, "Identity denied", 0, false},
	EConflict:          {409, "Conflict", 0, false},
	ENotFound:          {404, "Not found", 0, false},
	EMethodNotAllowed:  {405, "Method not allowed", 0, false},
	ETooLarge:          {413, "Request too large", 0, false},
	EUnsupportedMedia:  {415, "Unsupported media type", 0, false},
	ERateLimited:       {429, "Rate limited", 2 * time.Second, true},
	EOverloaded:        {503, "Overloaded", time.Second, true},
	EStoreUnavailable:  {503, "Store unavailable", 5 * time.Second, true},
	ESignerUnavailable: {503, "Signer unavailable", 5 * time.Second, true},
	EAuthUnavailable:   {503, "Authenticator unavailable", 5 * time.Second, true},
	EInternal:          {500, "Internal error", 0, true},
	ECAUnreachable:     {0, "CA unreachable", 0, true},
	ECAUntrusted:       {0, "CA not trusted", 0, false},
}

// ErrorCodes lists every code, for tables that must cover them all.
var ErrorCodes = []ErrorCode{EInvalid, EBadCSR, EUnauthenticated, EForbidden, EDenied, EConflict, ENotFound, EMethodNotAllowed,
	ETooLarge, EUnsupportedMedia, ERateLimited, EOverloaded, EStoreUnavailable, ESignerUnavailable, EAuthUnavailable,
	EInternal, ECAUnreachable, ECAUntrusted}

// info is c's row; an unknown code reads as EInternal's, so it can never
// leak as a 200 or an empty status.
func (c ErrorCode) info() codeInfo {
	if i, ok := codeTable[c]; ok {
		return i
	}
	return codeTable[EInternal]
}

// Known reports whether c is one of ErrorCodes.
func (c ErrorCode) Known() bool { _, ok := codeTable[c]; return ok }

// HTTPStatus is the status the API answers c with; 0 for the client-side
// codes, which the API never sends.
func (c ErrorCode) HTTPStatus() int { return c.info().status }

// Title is the problem title of c.
func (c ErrorCode) Title() string { return c.info().title }

// RetryAfter is how long the API tells clients to wait before retrying c
// (its Retry-After header), zero for none.
func (c ErrorCode) RetryAfter() time.Duration { return c.info().retryAfter }

// Retryable reports whether the same request may succeed later unchanged:
// outages, rate limits and an unreachable CA, not refusals.
func (c ErrorCode) Retryable() bool { return c.info().retryable }

// ServerFault reports whether a server answering c has failed: a 5xx
// other than shedding at its in-flight cap, which it does by design (a
// storm sheds tens of thousands a minute, counted in its metrics). Servers
// log these at ERROR; the rest are the caller's doing or expected.
func (c ErrorCode) ServerFault() bool { return c.HTTPStatus() >= 500 && c != EOverloaded }

// HungUp reports whether the caller whose request ctx is hung up (ctx was
// cancelled), as opposed to a deadline of the server's own passing:
// whatever failed then (a commit or a signature given up with its
// context) failed because the caller left, and nothing is down.
func HungUp(ctx context.Context) bool { return errors.Is(ctx.Err(), context.Canceled) }

// CodeForStatus is the code of an HTTP answer that carries no Rotor problem
// type (a proxy's error page, another vocabulary), from its status alone:
// the first code in ErrorCodes with that status, gateway errors as
// ECAUnreachable, any other 5xx as EInternal and any other 4xx as EInvalid.
func CodeForStatus(status int) ErrorCode {
	switch status {
	case 502, 503, 504:
		return ECAUnreachable // a gateway could not reach the CA
	}
	for _, c := range ErrorCodes {
		if codeTable[c].status == status {
			return c
		}
	}
	if status >= 500 {
		return EInternal
	}
	return EInvalid
}

// ProblemTypePrefix starts every RFC 9457 problem type Rotor emits; the code
// follows it.
const ProblemTypePrefix = "urn:rotor:problem:"

// ProblemType is the RFC 9457 "type" URI for a code.
func (c ErrorCode) ProblemType() string { return ProblemTypePrefix + string(c) }

// CodeFromProblemType is the inverse of ProblemType; unknown types give
// EInternal.
func CodeFromProblemType(t string) ErrorCode {
	c, ok := strings.CutPrefix(t, ProblemTypePrefix)
	if code := ErrorCode(c); ok && code.Known() {
		return code
	}
	return EInternal
}

// Error is Rotor's error: a code, a message safe to show the caller, and an
// optional wrapped cause that is logged but never shown.
type Error struct {
	Code    ErrorCode
	Message string
	Err     error
	// RetryAfter, when set, replaces the code's own Retry-After: a rate
	// limiter knows when its next token comes.
	RetryAfter time.Duration
}

// RetryAfterOf is how long a client should wait before retrying err: the
// first *Error's own RetryAfter, else its code's, zero for none.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if !errors.As(err, &e) {
		return 0
	}
	if e.RetryAfter > 0 {
		return e.RetryAfter
	}
	return e.Code.RetryAfter()
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted caller-safe message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with a caller-safe message and a cause kept for
// the log only.
func WrapError(code ErrorCode, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCodeOf returns the code of the first *Error in err's chain, EInternal
// for any other non-nil error, and "" for nil.
func ErrorCodeOf(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessageOf returns the caller-safe message of err: the message of the
// first *Error in its chain, or a generic one, so internal details never
// reach a client.
func ErrorMessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
