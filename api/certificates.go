package api

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rotor-dev/rotor"
)

// issueCertificate handles POST /v1/certificates. It counts the outcome
// here, where the answer is decided, so transport refusals (415, 413) are
// counted alongside the core's.
func (s *server) issueCertificate(w http.ResponseWriter, r *http.Request) {
	req, err := s.readIssueRequest(w, r)
	if err != nil {
		s.metrics.refused(rotor.ErrorCodeOf(err))
		s.problem.write(w, r, err)
		return
	}
	iss, issuer, err := s.cfg.CA.Issue(r.Context(), req)
	if err != nil {
		s.metrics.refused(rotor.ErrorCodeOf(err))
		s.problem.write(w, r, err)
		return
	}
	s.metrics.issued()
	w.Header().Set("Location", "/v1/certificates/"+iss.Serial)
	if wantsPEM(r.Header.Values("Accept")) {
		// For curl and openssl users: the body is cert.pem, leaf then chain.
		w.Header().Set("Content-Type", rotor.MediaPEMChain)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusCreated)
		_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: iss.Certificate})
		_, _ = w.Write(issuer.ChainPEM)
		return
	}
	writeJSON(w, http.StatusCreated, rotor.NewIssuedCertificate(iss, issuer, s.trustDomain))
}

// wantsPEM reports whether the client asked for the PEM chain and not for
// JSON; "*/*" (curl's default) and no Accept at all get JSON.
func wantsPEM(accept []string) bool {
	pemOK := false
	for _, field := range accept {
		for _, part := range strings.Split(field, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			switch mt {
			case rotor.MediaPEMChain:
				pemOK = true
			case rotor.MediaJSON:
				return false
			}
		}
	}
	return pemOK
}

// readIssueRequest turns the HTTP request into the core's IssueRequest. It
// only unwraps the CSR's PEM armour: parsing and checking the CSR happen
// once, in rotor.Policy.CheckCSR, after the caller is authenticated.
func (s *server) readIssueRequest(w http.ResponseWriter, r *http.Request) (rotor.IssueRequest, error) {
	var req rotor.IssueRequest
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mediaType != rotor.MediaJSON && mediaType != rotor.MediaPKCS10) {
		return req, rotor.Errorf(rotor.EUnsupportedMedia,
			"send the CSR as application/json {\"csr\": PEM} or as application/pkcs10 (PEM or DER)")
	}
	if fp := r.Header.Get(rotor.HeaderBundleFingerprint); fp != "" {
		if !rotor.IsLowerHex(fp, 64, 64) {
			return req, rotor.Errorf(rotor.EInvalid, "%s must be 64 lowercase hex digits", rotor.HeaderBundleFingerprint)
		}
		req.BundleFingerprint = fp
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return req, err
	}
	if mediaType == rotor.MediaPKCS10 {
		req.CSR = unarmor(body)
	} else {
		var in rotor.IssueBody
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return req, rotor.Errorf(rotor.EInvalid, "request body is not a valid issue request: %v", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return req, rotor.Errorf(rotor.EInvalid, "request body holds more than one JSON value")
		}
		if in.CSR == "" {
			return req, rotor.Errorf(rotor.EInvalid, "csr is required")
		}
		if in.TTL != "" {
			if req.TTL, err = time.ParseDuration(in.TTL); err != nil || req.TTL <= 0 {
				return req, rotor.Errorf(rotor.EInvalid, "ttl %q is not a positive Go duration such as \"12h\"", in.TTL)
			}
		}
		req.CSR = unarmor([]byte(in.CSR))
	}
	req.Credentials = rotor.Credentials{BearerToken: bearerToken(r.Header.Get("Authorization")),
		RemoteAddr: r.RemoteAddr}
	if r.TLS != nil {
		req.Credentials.PeerCertificates = r.TLS.PeerCertificates
	}
	return req, nil
}

// readBody reads at most MaxBody bytes, refusing larger bodies up front when
// Content-Length announces them.
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

// unarmor returns the first PEM block's bytes, or b itself when it holds no
// PEM (a DER request). Whatever it returns, the core parses: garbage is
// refused there as bad-csr, after authentication, and audited.
func unarmor(b []byte) []byte {
	if block, _ := pem.Decode(b); block != nil {
		return block.Bytes
	}
	return b
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

// getCertificate handles GET /v1/certificates/{serial}.
func (s *server) getCertificate(w http.ResponseWriter, r *http.Request) {
	serial := chi.URLParam(r, "serial")
	if !rotor.IsLowerHex(serial, 1, rotor.MaxSerialHex) {
		s.problem.write(w, r, rotor.Errorf(rotor.EInvalid, "serial must be 1 to %d lowercase hex digits", rotor.MaxSerialHex))
		return
	}
	iss, err := s.cfg.Finder.Issuance(r.Context(), serial)
	if err != nil {
		s.problem.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rotor.NewCertificateRecord(iss, s.trustDomain))
}

// writeJSON answers v as JSON. Responses carry certificates made for one
// caller, so no cache may keep them.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", rotor.MediaJSON)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
