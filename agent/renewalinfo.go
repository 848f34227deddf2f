package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/rotor-dev/rotor"
)

// EventRenewalSuggested: the CA's renewal window for the certificate on
// disk has opened and the agent's own plan lay beyond it, so the renewal
// moves to renew_at, a moment in the window. Attributes: serial,
// window_start, window_end, renew_at.
const EventRenewalSuggested = "certificate.renewal_suggested"

// EventRenewalInfoFailed: a renewal-info poll failed; the renewal
// schedule stays as it was. Logged at INFO for the first failure and at
// DEBUG for the rest until a poll succeeds. Attributes: serial, cause (as
// in rotor_agent_renewal_info_failures_total), error, retry_in.
const EventRenewalInfoFailed = "renewal_info.request_failed"

// EventBundleChanged: a poll found the CA serving a trust bundle other
// than the one on disk (a step of a root rotation), so the agent renews
// now: the new bundle is written, and streamed to Workload API clients,
// with a certificate that chains to it. The fleet's polls are spread over
// the interval, and so are these renewals. Attributes: serial, old, new
// (fingerprints), roots.
const EventBundleChanged = "bundle.changed"

// polling reports whether the agent asks the CA's renewal info at all.
func (a *Agent) polling() bool { return a.cfg.RenewalInfoInterval > 0 && !a.cfg.Once }

// wakeAt is when Run next has something to do while the certificate is
// not due: renew it, or ask the CA about it.
func (a *Agent) wakeAt() time.Time {
	if a.polling() && a.nextPoll.Before(a.cur.renewAt) {
		return a.nextPoll
	}
	return a.cur.renewAt
}

// checkRenewalInfo asks the CA's renewal info about the certificate on
// disk once a poll is due. When the window has opened and the agent's own
// plan lies beyond its end, the renewal moves to a uniformly random moment
// in it (RFC 9773 4.2), which for a revoked certificate is now. A plan
// inside the window already stands, so that polls repeated while a window
// stays open do not draw again and again towards its start.
//
// A failed poll changes nothing: the agent renews on its own schedule as
// it did before the CA had renewal info. It is counted, logged at INFO the
// first time and at DEBUG until a poll succeeds again, and retried after
// the interval.
func (a *Agent) checkRenewalInfo(ctx context.Context) {
	if !a.polling() || a.due() || a.now().Before(a.nextPoll) {
		return // a due certificate is renewed, not asked about
	}
	serial := serialOf(a.cur.cert.Leaf)
	if a.bundleChanged(ctx, serial) {
		return
	}
	info, err := a.ca.RenewalInfo(ctx, serial)
	if ctx.Err() != nil {
		return
	}
	now := a.now()
	if err != nil {
		a.nextPoll = now.Add(a.cfg.RenewalInfoInterval)
		a.metrics.renewalInfoFailed(err)
		level := slog.LevelDebug
		if !a.pollFailing {
			level, a.pollFailing = slog.LevelInfo, true
		}
		a.log.Log(ctx, level, "Cannot get the CA's renewal info; renewing on the agent's own schedule",
			rotor.LogEvent, EventRenewalInfoFailed, "serial", serial,
			"cause", causeOf(err), "error", err, "retry_in", a.cfg.RenewalInfoInterval)
		return
	}
	a.metrics.renewalInfoPolls.Inc()
	if a.pollFailing {
		a.pollFailing = false
		a.log.Info("The CA's renewal info answers again", "serial", serial)
	}
	a.nextPoll = now.Add(pollWait(info.RetryAfter, a.cfg.RenewalInfoInterval))
	w := info.Window
	if !w.Open(now) || !a.cur.renewAt.After(w.End) {
		return
	}
	a.cur.renewAt, a.cur.advised = w.RenewAt(now, a.rand()), true
	a.metrics.cert.renewal(a.cur.renewAt)
	a.log.Info("The CA suggests renewing now", rotor.LogEvent, EventRenewalSuggested, "serial", serial,
		"window_start", w.Start, "window_end", w.End, "renew_at", a.cur.renewAt)
}

// pollWait is how long to wait before the next poll: the interval, or the
// CA's Retry-After when it asks for sooner, but not under
// rotor.MinRenewalRetryAfter, the CA's own floor, unless the interval is
// shorter itself (an operator's choice, or a test's).
func pollWait(retryAfter, interval time.Duration) time.Duration {
	if retryAfter <= 0 {
		return interval
	}
	return min(interval, max(retryAfter, rotor.MinRenewalRetryAfter))
}

// bundleChanged asks the CA's bundle (a conditional request: 304 while it
// is the one on disk) and, when it changed, makes the certificate due now.
// A failure is left to the renewal-info poll that follows to report.
func (a *Agent) bundleChanged(ctx context.Context, serial string) bool {
	if a.bundle == nil {
		return false
	}
	old := a.bundle
	b, err := a.ca.Bundle(ctx, old)
	if err != nil || sameBundle(b, old) {
		return false
	}
	// Kept for the renewal about to run: its own conditional request then
	// gets a 304 rather than the new roots a second time.
	a.setBundle(b)
	now := a.now()
	a.nextPoll = now.Add(a.cfg.RenewalInfoInterval)
	a.cur.renewAt = now // by mTLS if the CA still takes the certificate, else by token
	a.metrics.cert.renewal(now)
	a.log.Info("The CA's trust bundle changed: renewing now to put it in place", rotor.LogEvent, EventBundleChanged,
		"serial", serial, "old", old.Fingerprint, "new", b.Fingerprint, "roots", len(b.Roots))
	return true
}

// sameBundle reports whether b holds the roots of known: the client hands
// known back on a 304, and a 200 may still carry the same roots.
func sameBundle(b, known *rotor.Bundle) bool {
	return b == known || b != nil && known != nil && b.Fingerprint == known.Fingerprint
}
