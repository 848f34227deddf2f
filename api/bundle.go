package api

import (
	"net/http"
	"strings"

	"github.com/rotor-dev/rotor"
)

// bundleMaxAge is how long clients and caches may reuse the bundle unasked.
// Short: a root rotation must reach agents within a renewal period, and a
// revalidation with If-None-Match costs a 304 without a body.
const bundleMaxAge = "max-age=60"

// getBundle serves the trust anchors with the bundle fingerprint as strong
// ETag, so agents poll cheaply and learn of a rotation by the ETag changing.
func (s *server) getBundle(w http.ResponseWriter, r *http.Request) {
	b := s.cfg.Trust.Trust().Bundle
	writeBundle(w, r, b, rotor.MediaPEMChain, b.PEM)
}

// writeBundle answers body, one form of bundle b, as contentType, with b's
// fingerprint as strong ETag; or 304 when the client holds that copy.
func writeBundle(w http.ResponseWriter, r *http.Request, b *rotor.Bundle, contentType string, body []byte) {
	etag := `"` + b.Fingerprint + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", bundleMaxAge)
	if etagMatches(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 13.1.2):
// any listed tag, weak or strong, equal to etag (weak or strong) matches,
// and so does "*".
func etagMatches(headers []string, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, h := range headers {
		for _, tag := range strings.Split(h, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}
