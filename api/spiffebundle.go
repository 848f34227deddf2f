package api

import (
	"crypto/x509"
	"encoding/json"
	"net/http"

	"github.com/go-jose/go-jose/v4"
)

// spiffeRefreshHint is the spiffe_refresh_hint of GET /v1/spiffe-bundle,
// in seconds: how often a federated trust domain should fetch it, as
// SPIRE's default. A root rotation waits a certificate lifetime (a day)
// between adding a root and signing under it, so peers polling every five
// minutes hold the new root long before it is needed.
const spiffeRefreshHint = 300

// spiffeBundle is the SPIFFE bundle format (SPIFFE Trust Domain and
// Bundle, section 4): a JWK Set whose keys are the X.509 authorities.
type spiffeBundle struct {
	Keys        []jose.JSONWebKey `json:"keys"`
	Sequence    uint64            `json:"spiffe_sequence"`
	RefreshHint int               `json:"spiffe_refresh_hint"`
}

// newSPIFFEBundle encodes roots as x509-svid keys: each root's public key
// with the root itself as x5c, as the format requires.
func newSPIFFEBundle(roots []*x509.Certificate, sequence uint64) spiffeBundle {
	b := spiffeBundle{Keys: make([]jose.JSONWebKey, 0, len(roots)), Sequence: sequence,
		RefreshHint: spiffeRefreshHint}
	for _, r := range roots {
		b.Keys = append(b.Keys, jose.JSONWebKey{Key: r.PublicKey, Use: "x509-svid",
			Certificates: []*x509.Certificate{r}})
	}
	return b
}

// getSPIFFEBundle serves the trust domain's bundle in the SPIFFE bundle
// format, public like /v1/bundle, so that other trust domains (SPIRE
// servers, go-spiffe's federation package) can federate with Rotor. The
// sequence is rotor.Bundle.Sequence, the same on every replica; the ETag
// is the bundle's fingerprint.
func (s *server) getSPIFFEBundle(w http.ResponseWriter, r *http.Request) {
	b := s.cfg.Trust.Trust().Bundle
	body, err := json.Marshal(newSPIFFEBundle(b.Roots, b.Sequence()))
	if err != nil {
		s.problem.write(w, r, err)
		return
	}
	writeBundle(w, r, b, "application/json", body)
}
