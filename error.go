package rotor

import (
	"errors"
	"fmt"
	"strings"
)

// ErrorCode is a stable, machine-readable cause. The API maps each code to one
// HTTP status and one problem type; the client maps the problem type back, so
// both sides decide with errors.As, never by matching message text.
type ErrorCode string

// Error codes. Their string values appear in problem types and in the audit
// table's refusal reasons, so they never change.
const (
	EInvalid           ErrorCode = "invalid-request"      // malformed request
	EBadCSR            ErrorCode = "bad-csr"              // CSR unparsable, bad signature, weak key
	EUnauthenticated   ErrorCode = "unauthenticated"      // no or bad credentials
	EForbidden         ErrorCode = "identity-not-allowed" // names or usage the caller may not have
	ENotFound          ErrorCode = "not-found"
	ETooLarge          ErrorCode = "too-large"
	EUnsupportedMedia  ErrorCode = "unsupported-media-type"
	ERateLimited       ErrorCode = "rate-limited"
	EStoreUnavailable  ErrorCode = "store-unavailable"
	ESignerUnavailable ErrorCode = "signer-unavailable"
	EAuthUnavailable   ErrorCode = "authenticator-unavailable" // e.g. TokenReview or JWKS unreachable
	EInternal          ErrorCode = "internal"
)

// ErrorCodes lists every code, for tables that must cover them all.
var ErrorCodes = []ErrorCode{EInvalid, EBadCSR, EUnauthenticated, EForbidden, ENotFound, ETooLarge,
	EUnsupportedMedia, ERateLimited, EStoreUnavailable, ESignerUnavailable, EAuthUnavailable, EInternal}

// ProblemTypePrefix starts every RFC 9457 problem type Rotor emits; the code
// follows it.
const ProblemTypePrefix = "urn:rotor:problem:"

// ProblemType is the RFC 9457 "type" URI for a code.
func (c ErrorCode) ProblemType() string { return ProblemTypePrefix + string(c) }

// CodeFromProblemType is the inverse of ProblemType; unknown types give
// EInternal.
func CodeFromProblemType(t string) ErrorCode {
	c := ErrorCode(strings.TrimPrefix(t, ProblemTypePrefix))
	for _, k := range ErrorCodes {
		if k == c && strings.HasPrefix(t, ProblemTypePrefix) {
			return c
		}
	}
	return EInternal
}

// Retryable reports whether the same request may succeed later unchanged:
// outages and rate limits, not refusals.
func (c ErrorCode) Retryable() bool {
	switch c {
	case ERateLimited, EStoreUnavailable, ESignerUnavailable, EAuthUnavailable, EInternal:
		return true
	}
	return false
}

// Error is Rotor's error: a code, a message safe to show the caller, and an
// optional wrapped cause that is logged but never shown.
type Error struct {
	Code    ErrorCode
	Message string
	Err     error
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
