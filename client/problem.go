package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

// TransportError is the cause of the *rotor.Error returned when the request
// got no answer from the CA: connection refused or reset, a timeout, a TLS
// failure. Its code says which: rotor.ECAUntrusted when the CA's certificate
// did not verify, else rotor.ECAUnreachable.
type TransportError struct {
	URL string
	Err error
}

func (e *TransportError) Error() string { return fmt.Sprintf("%s: %v", e.URL, e.Err) }
func (e *TransportError) Unwrap() error { return e.Err }

// transportError wraps a failed round trip. A cancelled context stays
// recognisable with errors.Is, so a shutdown is not counted as an outage.
func transportError(req *http.Request, err error) error {
	if ctxErr := req.Context().Err(); ctxErr != nil {
		return rotor.WrapError(rotor.EInternal, ctxErr, "request to %s cancelled", req.URL.Path)
	}
	if errors.Is(err, context.Canceled) {
		return rotor.WrapError(rotor.EInternal, err, "request to %s cancelled", req.URL.Path)
	}
	cause := &TransportError{URL: req.URL.Redacted(), Err: err}
	if untrusted(err) {
		return rotor.WrapError(rotor.ECAUntrusted, cause, "the CA at %s presented a certificate the configured roots do not verify", req.URL.Host)
	}
	return rotor.WrapError(rotor.ECAUnreachable, cause, "CA at %s did not answer", req.URL.Host)
}

// untrusted reports whether a round trip failed because the server's
// certificate did not verify: a wrong --ca-bundle, a CA serving another
// chain, or something in between. Retrying cannot fix that.
func untrusted(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// responseError turns an unwanted answer into a coded error. A problem
// document with a Rotor type gives its code; anything else (a proxy's HTML
// page, a problem of another vocabulary) is coded from the status alone, so
// a 502 from a load balancer is still "retry later".
func responseError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	p := &Problem{RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == rotor.MediaProblem {
		var doc rotor.Problem
		if err := json.Unmarshal(body, &doc); err == nil {
			p.Problem = doc
		}
	}
	p.Status = resp.StatusCode // the status line, whatever the document says
	code := rotor.CodeForStatus(resp.StatusCode)
	if strings.HasPrefix(p.Type, rotor.ProblemTypePrefix) {
		code = rotor.CodeFromProblemType(p.Type)
	}
	msg := p.Detail
	if msg == "" {
		msg = "CA answered " + resp.Status
	}
	return &rotor.Error{Code: code, Message: msg, Err: p}
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
