package api

import (
	"log/slog"
	"net/http"

	"github.com/rotor-dev/rotor/internal/httpjson"

	"github.com/rotor-dev/rotor"
)

// getRenewalInfo handles GET /v1/renewal-info/{serial}: the window in
// which the CA suggests the certificate be renewed (rotor.SuggestRenewal),
// in ACME renewal information's shape, with Retry-After saying when to ask
// again.
//
// It is unauthenticated, as ACME's is: it tells only a window and whether
// a serial is on record, and a holder whose certificate was revoked has no
// credential left to ask with but its token. For the same reason its
// refusals (a bad or unknown serial) are answered but not recorded: they
// decide nothing, and anyone could otherwise write audit rows at will.
func (s *server) getRenewalInfo(w http.ResponseWriter, r *http.Request) {
	serial, err := pathSerial(r)
	var st *rotor.CertificateStatus
	if err == nil {
		st, err = s.cfg.Certificates.CertificateStatus(r.Context(), serial)
	}
	if err != nil {
		s.problem.write(w, r, err)
		return
	}
	advice := rotor.SuggestRenewal(st, s.cfg.Trust.Trust().Issuer.KeyID, s.cfg.Now(), s.cfg.RenewalInfoRetryAfter)
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "renewal info", slog.String("serial", serial),
			slog.Time("start", advice.Window.Start), slog.Time("end", advice.Window.End),
			slog.String("reason", advice.Reason))
	}
	w.Header().Set("Retry-After", retryAfterSeconds(advice.RetryAfter))
	httpjson.Write(w, http.StatusOK, rotor.RenewalInfo{SuggestedWindow: advice.Window})
}
