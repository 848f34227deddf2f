package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rotor-dev/rotor"
)

// crlMaxAge caps how long clients and caches may reuse a CRL unasked: an
// HTTP cache in front of the CA may delay a revocation by this much beyond
// the CA's own second, and revalidating with If-None-Match costs a 304.
const crlMaxAge = time.Minute

// getCRL handles GET /v1/crl: the current issuer's CRL.
func (s *server) getCRL(w http.ResponseWriter, r *http.Request) {
	s.writeCRL(w, r, s.cfg.Trust.Trust().Issuer)
}

// getIssuerCRL handles GET /v1/crl/{issuer_key_id}, the distribution point
// leaves name (rotor.Policy.CRLDistributionPoint): the CRL of that issuer
// key if it is the current one. The CA keeps only the current issuer's
// signer, so it cannot sign for an earlier one.
func (s *server) getIssuerCRL(w http.ResponseWriter, r *http.Request) {
	iss := s.cfg.Trust.Trust().Issuer
	if id := strings.ToLower(chi.URLParam(r, "issuer_key_id")); id != iss.KeyID {
		s.problem.write(w, r, rotor.Errorf(rotor.ENotFound, "this CA holds only the signer of its current issuer, "+
			"key ID %s, and serves no CRL for key ID %s", iss.KeyID, id))
		return
	}
	s.writeCRL(w, r, iss)
}

// writeCRL answers with iss's current CRL, DER. Its ETag is weak and names
// the issuer key and CRL number: every replica gives the same CRL number to
// the same revocations, but an ECDSA signature differs from one signing to
// the next.
func (s *server) writeCRL(w http.ResponseWriter, r *http.Request, iss *rotor.Issuer) {
	if s.cfg.CRLs == nil {
		s.problem.write(w, r, rotor.Errorf(rotor.ENotFound, "this CA serves no CRL"))
		return
	}
	c, err := s.cfg.CRLs.Get(r.Context(), iss)
	if err != nil {
		s.problem.write(w, r, err)
		return
	}
	etag := `W/"` + c.IssuerKeyID + "-" + c.Number.Text(16) + `"`
	maxAge := min(crlMaxAge, c.NextUpdate.Sub(s.cfg.Now()))
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "max-age="+strconv.Itoa(max(0, int(maxAge/time.Second))))
	if etagMatches(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", rotor.MediaPKIXCRL)
	h.Set("Content-Length", strconv.Itoa(len(c.DER)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(c.DER)
}
