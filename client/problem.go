package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// Problem is an RFC 9457 problem document as the CA sent it. It is the
// cause (Err) of the *rotor.Error the client returns for a refusal, so
// callers that need the status, the instance (to quote to an operator) or
// Retry-After get it with errors.As.
type Problem struct {
	rotor.Problem
	// RetryAfter is the server's Retry-After header, zero if none.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	s := fmt.Sprintf("HTTP %d %s", p.Status, p.Type)
	if p.Instance != "" {
		s += " (" + p.Instance + ")"
	}
	return s
}

// UnreachableError is the cause of the *rotor.Error returned when no answer
// came back: connection refused, timeout, TLS failure. Its code is
// rotor.EInternal, which is retryable; rotor has no code of its own for "the
// CA did not answer", so metrics tell it apart with errors.As.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string { return fmt.Sprintf("%s: %v", e.URL, e.Err) }
func (e *UnreachableError) Unwrap() error { return e.Err }

// Cause names an error for metrics and logs: "unreachable" when the CA did
// not answer, else the error's code.
func Cause(err error) string {
	var u *UnreachableError
	if errors.As(err, &u) {
		return "unreachable"
	}
	return string(rotor.ErrorCodeOf(err))
}

// transportError wraps a failed round trip. A cancelled context stays
// recognisable with errors.Is, so a shutdown is not counted as an outage.
func transportError(req *http.Request, err error) error {
	if ctxErr := req.Context().Err(); ctxErr != nil {
		return rotor.WrapError(rotor.EInternal, ctxErr, "request to %s cancelled", req.URL.Path)
	}
	if errors.Is(err, context.Canceled) {
		return rotor.WrapError(rotor.EInternal, err, "request to %s cancelled", req.URL.Path)
	}
	return rotor.WrapError(rotor.EInternal, &UnreachableError{URL: req.URL.Redacted(), Err: err},
		"CA at %s did not answer", req.URL.Host)
}

// responseError turns an unwanted answer into a coded error. A problem
// document with a Rotor type gives its code; anything else (a proxy's HTML
// page, a problem of another vocabulary) is coded from the status alone, so
// a 502 from a load balancer is still "retry later".
func responseError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	p := &Problem{RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" {
		var doc rotor.Problem
		if err := json.Unmarshal(body, &doc); err == nil {
			p.Problem = doc
		}
	}
	p.Status = resp.StatusCode // the status line, whatever the document says
	code := codeFromStatus(resp.StatusCode)
	if strings.HasPrefix(p.Type, rotor.ProblemTypePrefix) {
		code = rotor.CodeFromProblemType(p.Type)
	}
	msg := p.Detail
	if msg == "" {
		msg = "CA answered " + resp.Status
	}
	return &rotor.Error{Code: code, Message: msg, Err: p}
}

// codeFromStatus is the fallback for answers without a Rotor problem type.
func codeFromStatus(status int) rotor.ErrorCode {
	switch status {
	case http.StatusUnauthorized:
		return rotor.EUnauthenticated
	case http.StatusForbidden:
		return rotor.EForbidden
	case http.StatusNotFound:
		return rotor.ENotFound
	case http.StatusRequestEntityTooLarge:
		return rotor.ETooLarge
	case http.StatusUnsupportedMediaType:
		return rotor.EUnsupportedMedia
	case http.StatusTooManyRequests:
		return rotor.ERateLimited
	}
	if status >= 500 {
		return rotor.EInternal // retryable: gateways and overloaded servers recover
	}
	return rotor.EInvalid
}

// retryAfter parses Retry-After in its delay-seconds form; the HTTP-date
// form is not sent by Rotor and is ignored.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// RetryAfter returns the server's Retry-After for err, zero if none.
func RetryAfter(err error) time.Duration {
	var p *Problem
	if errors.As(err, &p) {
		return p.RetryAfter
	}
	return 0
}
