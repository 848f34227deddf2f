package api

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// credentials reads what the request carries to prove who it is, from the
// headers and the TLS handshake only. Two Authorization headers are
// refused: guessing which one counts is how a proxy's header and a
// client's get confused.
func credentials(r *http.Request) (rotor.Credentials, error) {
	cred := rotor.Credentials{RemoteAddr: r.RemoteAddr}
	switch auth := r.Header.Values("Authorization"); len(auth) {
	case 0:
	case 1:
		cred.BearerToken = bearerToken(auth[0])
	default:
		return cred, rotor.Errorf(rotor.EInvalid, "the request has %d Authorization headers: send one", len(auth))
	}
	if r.TLS != nil {
		cred.PeerCertificates = r.TLS.PeerCertificates
	}
	return cred, nil
}

// bearerToken extracts the token of an "Authorization: Bearer" header; any
// other scheme carries no credential Rotor understands.
func bearerToken(h string) string {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// readIssueRequest reads and checks the body of an authenticated issuance
// request. It only unwraps the CSR: parsing and checking it happen once,
// in rotor.Policy.CheckCSR.
func (s *server) readIssueRequest(w http.ResponseWriter, r *http.Request) (rotor.IssueRequest, error) {
	var req rotor.IssueRequest
	mediaType := mediaType(r)
	if mediaType != rotor.MediaJSON && mediaType != rotor.MediaPKCS10 {
		return req, rotor.Errorf(rotor.EUnsupportedMedia,
			"send the CSR as application/json {\"csr\": PEM} or as application/pkcs10 (PEM or DER)")
	}
	switch fps := r.Header.Values(rotor.HeaderBundleFingerprint); {
	case len(fps) > 1:
		return req, rotor.Errorf(rotor.EInvalid, "send one %s header", rotor.HeaderBundleFingerprint)
	case len(fps) == 1 && !rotor.IsLowerHex(fps[0], 64, 64):
		return req, rotor.Errorf(rotor.EInvalid, "%s must be 64 lowercase hex digits", rotor.HeaderBundleFingerprint)
	case len(fps) == 1:
		req.BundleFingerprint = fps[0]
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return req, err
	}
	if mediaType == rotor.MediaPKCS10 {
		req.CSR, err = csrDER(body, true)
		return req, err
	}
	in, err := decodeIssueBody(body)
	if err != nil {
		return req, err
	}
	if in.TTL != "" {
		if req.TTL, err = time.ParseDuration(in.TTL); err != nil || req.TTL <= 0 {
			return req, rotor.Errorf(rotor.EInvalid, "ttl %q is not a positive Go duration such as \"12h\"", in.TTL)
		}
	}
	req.CSR, err = csrDER([]byte(in.CSR), false)
	return req, err
}

// mediaType is the body's one Content-Type without parameters, or "" if
// there is none, more than one, or it does not parse.
func mediaType(r *http.Request) string {
	ct := r.Header.Values("Content-Type")
	if len(ct) != 1 {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct[0])
	if err != nil {
		return ""
	}
	return mt
}

// readBody reads at most MaxBody bytes, refusing larger bodies up front when
// Content-Length announces them. The server's ReadTimeout bounds the whole
// body, however slowly it comes.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooLarge := rotor.Errorf(rotor.ETooLarge, "request body exceeds %d bytes", s.cfg.MaxBody)
	if r.ContentLength > s.cfg.MaxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, rotor.WrapError(rotor.EInvalid, err, "could not read the request body")
	}
	return body, nil
}

// decodeIssueBody reads rotor.IssueBody strictly (decodeObject): csr
// required, ttl optional.
func decodeIssueBody(body []byte) (rotor.IssueBody, error) {
	var in rotor.IssueBody
	if err := decodeObject(body, `{"csr": PEM, "ttl": duration}`, field{"csr", &in.CSR}, field{"ttl", &in.TTL}); err != nil {
		return rotor.IssueBody{}, err
	}
	if in.CSR == "" {
		return rotor.IssueBody{}, rotor.Errorf(rotor.EInvalid, "request body: csr is required")
	}
	return in, nil
}

// field is one key decodeObject takes, and where its value goes: a
// *string or a *bool.
type field struct {
	name string
	dst  any
}

// decodeObject reads a JSON body strictly: one object whose keys are among
// fields (case matters), each at most once, each of its field's type, and
// nothing after it. encoding/json alone would match keys case-
// insensitively and let a repeated key's last value win, so two parsers
// could read one body two ways. shape describes the object for errors.
func decodeObject(body []byte, shape string, fields ...field) error {
	bad := func(format string, args ...any) error {
		return rotor.Errorf(rotor.EInvalid, "request body: "+format, args...)
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad("want a JSON object %s", shape)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		key, _ := tok.(string)
		i := slices.Index(names, key)
		switch {
		case err != nil:
			return bad("not valid JSON")
		case i < 0:
			return bad("unknown field %q: the fields are %s", key, strings.Join(names, " and "))
		case seen[key]:
			return bad("field %q is given twice", key)
		}
		seen[key] = true
		tok, err = dec.Token()
		ok := false
		switch dst := fields[i].dst.(type) {
		case *string:
			*dst, ok = tok.(string)
		case *bool:
			*dst, ok = tok.(bool)
		}
		if err != nil || !ok {
			return bad("field %q must be a %s", key, kindOf(fields[i].dst))
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return bad("not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("more than one JSON value")
	}
	return nil
}

func kindOf(dst any) string {
	if _, ok := dst.(*bool); ok {
		return "boolean"
	}
	return "string"
}

// csrDER unwraps a CSR's PEM armour: exactly one CERTIFICATE REQUEST (or
// the older NEW CERTIFICATE REQUEST) block with no headers, and nothing but
// white space around it. What is not PEM is DER when allowDER, else
// refused. Whatever it returns, the core parses and checks.
func csrDER(b []byte, allowDER bool) ([]byte, error) {
	trimmed := bytes.TrimSpace(b)
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		if allowDER {
			return b, nil
		}
		return nil, rotor.Errorf(rotor.EBadCSR, "csr must be a PEM CERTIFICATE REQUEST")
	}
	block, rest := pem.Decode(trimmed)
	switch {
	case block == nil:
		return nil, rotor.Errorf(rotor.EBadCSR, "the CSR's PEM block does not decode")
	case block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST":
		return nil, rotor.Errorf(rotor.EBadCSR, "PEM block %q is not a CERTIFICATE REQUEST", block.Type)
	case len(block.Headers) > 0:
		return nil, rotor.Errorf(rotor.EBadCSR, "the CSR's PEM block has headers")
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, rotor.Errorf(rotor.EBadCSR, "text after the CSR's PEM block: send exactly one CERTIFICATE REQUEST")
	}
	return block.Bytes, nil
}
