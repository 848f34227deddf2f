package rotor

import (
	"fmt"
	"time"
)

// RenewalWindow is when the CA suggests a certificate be renewed: ACME
// renewal information's suggestedWindow (RFC 9773 4.2). Start is never
// after End; both are whole seconds, UTC, as RFC 3339 carries them.
type RenewalWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Open reports whether the window has opened at now.
func (w RenewalWindow) Open(now time.Time) bool { return !now.Before(w.Start) }

// RenewAt is when a holder should renew given the window, RFC 9773 4.2's
// client rule: a uniformly random moment in [max(Start, now), End] for r
// uniform in [0,1), so a fleet told the same window spreads its renewals
// over it; now itself when the window has already closed, since a renewal
// the CA asked for in the past is due at once.
func (w RenewalWindow) RenewAt(now time.Time, r float64) time.Time {
	from := w.Start
	if now.After(from) {
		from = now
	}
	if !w.End.After(from) {
		return from
	}
	return from.Add(time.Duration(r * float64(w.End.Sub(from))))
}

// Retry-After bounds of renewal information.
const (
	// DefaultRenewalRetryAfter is how long a holder is told to wait before
	// asking again: a fleet polling every five minutes costs the CA one
	// indexed read per certificate per five minutes, and a revocation or
	// issuer rotation reaches every holder within that.
	DefaultRenewalRetryAfter = 5 * time.Minute
	// MinRenewalRetryAfter is the shortest wait the CA ever asks for, also
	// when a window opens sooner: a holder told to come back at once, in a
	// loop, would poll the CA as fast as it can.
	MinRenewalRetryAfter = 30 * time.Second
)

// OtherIssuerSpread is the longest window given to a certificate whose
// issuer key the CA no longer signs with: the whole fleet of the old
// issuer is told at once, and spreads its renewals over this much.
const OtherIssuerSpread = 10 * time.Minute

// RenewalAdvice is the CA's advice on one certificate: the window, how
// long the holder should wait before asking again, and why, for the log
// only (never sent: the window says all a holder needs).
type RenewalAdvice struct {
	Window     RenewalWindow
	RetryAfter time.Duration
	Reason     string
}

// SuggestRenewal is the CA's renewal window for the certificate st
// describes, as of now, when the CA signs with the issuer key issuerKeyID
// (Trust().Issuer.KeyID). It is transport-free so that the REST API's
// renewal-info and ACME's renewalInfo answer alike:
//
//   - revoked: [revoked at, +1s], open, so the holder renews at once;
//   - expired: [now, now+1s], open;
//   - issued by another issuer key (the issuer rotated, or the identity must
//     move to a new root): [now, now + min(OtherIssuerSpread, half the time
//     left)], open, so the old issuer's fleet spreads its renewals;
//   - otherwise renew_after (PacedRenewalTime, where rotor-agent renews by
//     default), to halfway through the rest of the lifetime.
//
// An issuance with no recorded issuer key, or an empty issuerKeyID, is
// never taken for another issuer's. retryAfter is the wait the CA asks
// between polls, zero meaning DefaultRenewalRetryAfter; it is shortened to
// the window's opening when that comes sooner, and never below
// MinRenewalRetryAfter. It is a pure function: no clock of its own.
func SuggestRenewal(st *CertificateStatus, issuerKeyID string, now time.Time, retryAfter time.Duration) RenewalAdvice {
	if retryAfter <= 0 {
		retryAfter = DefaultRenewalRetryAfter
	}
	retryAfter = max(retryAfter, MinRenewalRetryAfter)
	now = now.UTC().Truncate(time.Second)
	iss := st.Issuance
	notAfter := iss.NotAfter.UTC()
	var a RenewalAdvice
	switch {
	case st.Revocation != nil:
		// A replica whose clock runs ahead may have recorded the revocation
		// in this one's future; the window must be open all the same.
		start := st.Revocation.Time.UTC().Truncate(time.Second)
		if start.After(now) {
			start = now
		}
		a = RenewalAdvice{Window: RenewalWindow{start, start.Add(time.Second)},
			Reason: fmt.Sprintf("revoked (%s) at %s: renew now", st.Revocation.Reason, st.Revocation.Time.UTC().Format(time.RFC3339))}
	case !now.Before(notAfter):
		a = RenewalAdvice{Window: RenewalWindow{now, now.Add(time.Second)},
			Reason: "expired at " + notAfter.Format(time.RFC3339) + ": renew now"}
	case issuerKeyID != "" && iss.IssuerKeyID != "" && iss.IssuerKeyID != issuerKeyID:
		spread := max(min(OtherIssuerSpread, notAfter.Sub(now)/2), time.Second)
		a = RenewalAdvice{Window: RenewalWindow{now, now.Add(spread).Truncate(time.Second)},
			Reason: fmt.Sprintf("issued by issuer key %s, but the CA signs with %s: renew within %v", iss.IssuerKeyID, issuerKeyID, spread.Round(time.Second))}
	default:
		start := iss.RenewAfter().UTC().Truncate(time.Second)
		a = RenewalAdvice{Window: RenewalWindow{start, start.Add(notAfter.Sub(start) / 2).Truncate(time.Second)},
			Reason: fmt.Sprintf("renew from %.0f%% into the lifetime", 100*start.Sub(iss.IssuedAt).Seconds()/notAfter.Sub(iss.IssuedAt).Seconds())}
	}
	a.RetryAfter = retryAfter
	if soon := a.Window.Start.Sub(now); soon > 0 && soon < retryAfter {
		a.RetryAfter = max(soon, MinRenewalRetryAfter)
	}
	return a
}
