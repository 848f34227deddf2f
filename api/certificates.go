package api

import (
	"encoding/pem"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/httpjson"

	"github.com/rotor-dev/rotor"
)

// issueCertificate handles POST /v1/certificates: authenticate from the
// headers, then read and check the body, then issue. Every refusal, the
// transport's own (415, 413, a malformed body) included, is recorded by the
// CA and counted here, where the answer is decided.
func (s *server) issueCertificate(w http.ResponseWriter, r *http.Request) {
	ca := s.cfg.CA
	cred, err := credentials(r)
	if err != nil {
		s.refuse(w, r, ca.Refuse(r.Context(), r.RemoteAddr, rotor.Caller{}, err))
		return
	}
	caller, err := ca.Authenticate(r.Context(), cred)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	req, err := s.readIssueRequest(w, r)
	if err != nil {
		s.refuse(w, r, ca.Refuse(r.Context(), r.RemoteAddr, caller, err))
		return
	}
	req.Credentials = cred
	iss, issuer, err := ca.IssueFor(r.Context(), caller, req)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	s.metrics.issued(iss.Authenticator)
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
	httpjson.Write(w, http.StatusCreated, rotor.NewIssuedCertificate(iss, issuer, s.trustDomain))
}

// refuse counts and answers a refusal the CA has recorded. A body the
// request may still have is not read: the connection closes right after
// the answer, so a refused client cannot make the server wait to drain it.
// A client that hung up is counted apart: its store-unavailable or
// signer-unavailable is its own doing, and must not look like an outage.
func (s *server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if rotor.HungUp(r.Context()) {
		s.metrics.abandoned.Inc()
	} else {
		s.metrics.refused(rotor.ErrorCodeOf(err))
	}
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
		defer func() { _ = http.NewResponseController(w).SetReadDeadline(time.Now()) }()
	}
	s.problem.write(w, r, err)
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
