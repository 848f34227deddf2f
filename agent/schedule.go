package agent

import (
	"crypto/x509"
	"time"
)

// MaxJitter is the largest share of the wait between issuance and the
// planned renewal by which a renewal is moved earlier, so a fleet started
// together spreads its renewals over a tenth of the wait.
const MaxJitter = 0.1

// NextRenewal is when to renew leaf: the earlier of the agent's threshold
// (rb before expiry) and the CA's renewAfter (zero if unknown), moved
// earlier by jitter (uniform in [0,1)) times MaxJitter of the wait.
//
// Lifetimes are measured from issuedAt, not NotBefore, because the CA
// backdates NotBefore for slow clocks: with a 10s certificate and 20s of
// backdating, "33% of the lifetime" taken from NotBefore would be due the
// moment it is issued. issuedAt zero means NotBefore. A fixed rb longer
// than the lifetime falls back to DefaultRenewBefore rather than renewing
// without pause. It is a pure function: no clock, no randomness of its own.
func NextRenewal(leaf *x509.Certificate, issuedAt, renewAfter time.Time, rb RenewBefore, jitter float64) time.Time {
	if issuedAt.IsZero() || issuedAt.Before(leaf.NotBefore) || issuedAt.After(leaf.NotAfter) {
		issuedAt = leaf.NotBefore
	}
	life := leaf.NotAfter.Sub(issuedAt)
	if rb.Share == 0 && rb.Duration >= life {
		rb = DefaultRenewBefore
	}
	before := rb.Duration
	if rb.Share > 0 {
		before = time.Duration(rb.Share * float64(life))
	}
	at := leaf.NotAfter.Add(-before)
	if renewAfter.After(issuedAt) && renewAfter.Before(at) {
		at = renewAfter
	}
	return at.Add(-time.Duration(jitter * MaxJitter * float64(at.Sub(issuedAt))))
}

// Backoff spaces retries: "full jitter" exponential backoff, where the
// wait before retry n is uniform in [0, min(Cap, Base*2^n)). The jitter
// keeps a fleet from retrying in step after an outage; the cap keeps a
// long outage from pushing the next try past the certificate's expiry.
type Backoff struct {
	Base, Cap time.Duration
}

// Delay is the wait before retry attempt (0 for the first retry), given r
// uniform in [0,1).
func (b Backoff) Delay(attempt int, r float64) time.Duration {
	ceiling := b.Cap
	if attempt < 62 && b.Base<<attempt > 0 && b.Base<<attempt < b.Cap {
		ceiling = b.Base << attempt
	}
	return time.Duration(r * float64(ceiling))
}

// backoffFor scales retries to a certificate's lifetime: a 10s
// certificate retries within a second, a 24h one caps at five minutes.
// Without a certificate (life zero) the cap is 30s, so a workload waiting
// for its first certificate is not kept waiting long after the CA is back.
func backoffFor(life time.Duration) Backoff {
	if life <= 0 {
		return Backoff{Base: time.Second, Cap: 30 * time.Second}
	}
	return Backoff{Base: clamp(life/100, 100*time.Millisecond, time.Second),
		Cap: clamp(life/10, time.Second, 5*time.Minute)}
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}
