package agent

import (
	"cmp"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// Events the agent logs as rotor.LogEvent, for programs that follow its log.
const (
	// EventWritten: a new certificate is on disk. Attributes: identity,
	// serial, not_after, renew_at, out_dir.
	EventWritten = "certificate.written"
	// EventReused: the certificate found on disk at start is kept.
	EventReused = "certificate.reused"
	// EventFailed: an attempt failed. Attributes: cause (as in
	// rotor_agent_failures_total), attempt, error, retry_in unless the
	// agent gives up; for a refusal by the CA also status, instance and
	// detail from its problem document.
	EventFailed = "certificate.request_failed"
	// EventExpired: the certificate on disk has expired and no new one is
	// in place, so the workload has none that is valid; logged at ERROR
	// once, at the first failed attempt after expiry. Attributes:
	// expired_at, out_dir.
	EventExpired = "certificate.expired"
	// EventRecovered: after EventExpired, a valid certificate is on disk
	// again. Attributes: serial, not_after, expired_for.
	EventRecovered = "certificate.recovered"
	// EventHookRan: the --exec command ran and printed something.
	// Attributes: serial, output (the first 4 KiB).
	EventHookRan = "hook.ran"
	// EventListening: /livez, /readyz, /healthz and /metrics are served. Attributes:
	// listen, the bound address.
	EventListening = "agent.listening"
)

// Agent keeps one certificate fresh. Run drives it; Handler may be served
// concurrently with Run.
type Agent struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	rand      func() float64
	metrics   *metrics
	hook      hook
	pin       string              // normalised CAFingerprint, or ""
	fileRoots []*x509.Certificate // from CABundleFile

	// Owned by Run's goroutine.
	bundle      *rotor.Bundle  // what bundle.pem holds (or will)
	ca          *client.Client // trusts fileRoots and bundle
	cur         *current       // the certificate on disk, nil if unusable
	held        *issuedPair    // issued but not yet on disk: the write failed
	mtlsRefused bool           // the CA refused cur over mTLS: use the token
	// foundExpiry is the NotAfter of a certificate found on disk at start
	// that the agent could not adopt; zero if none.
	foundExpiry time.Time
	lapsed      bool // EventExpired was logged; EventRecovered is due
	// nextPoll is when to ask the CA's renewal info next (zero: at once);
	// pollFailing, that the last poll failed and was logged.
	nextPoll    time.Time
	pollFailing bool
}

// current is the certificate on disk, with what the schedule needs.
type current struct {
	cert        *tls.Certificate // Leaf set
	key         crypto.Signer
	identity    rotor.Identity
	trustDomain string
	issuedAt    time.Time
	renewAt     time.Time // zero: due now
	// advised: the CA's renewal window brought renewAt forward, so the
	// renewal goes by token (see credentials).
	advised bool
}

// New validates cfg, reads the CA bundle file if any, and returns an Agent.
// It does not touch the network or OutDir.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Layout, _ = cfg.Layout.In(cfg.OutDir) // checked by Validate
	a := &Agent{cfg: cfg, log: cfg.Logger, now: cfg.Now, rand: cfg.Rand,
		hook: hook{command: cfg.Exec, env: cfg.ExecEnv, timeout: cfg.ExecTimeout, signal: cfg.Signal,
			pidFile: cfg.PIDFile}}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.metrics = newMetrics(a.now)
	if a.rand == nil {
		a.rand = rand.Float64
	}
	if cfg.CAFingerprint != "" {
		a.pin, _ = rotor.ParseFingerprint(cfg.CAFingerprint) // checked by Validate
	}
	if cfg.CABundleFile != "" {
		pemBytes, err := os.ReadFile(cfg.CABundleFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-bundle: %w", err)
		}
		if a.fileRoots, err = rotor.ParseCertificates(pemBytes); err != nil {
			return nil, fmt.Errorf("--ca-bundle %s: %w", cfg.CABundleFile, err)
		}
	}
	return a, nil
}

// Run makes sure a valid certificate is on disk and, unless Once is set,
// keeps renewing it until ctx ends, asking the CA's renewal info in
// between (RenewalInfoInterval). A cancelled ctx is a clean shutdown
// (nil) except in Once mode, where it means no certificate was obtained.
func (a *Agent) Run(ctx context.Context) error {
	a.loadDisk()
	if !a.due() {
		a.log.Info("Reusing the certificate on disk", rotor.LogEvent, EventReused, "identity", a.cur.identity.String(),
			"serial", serialOf(a.cur.cert.Leaf), "expires_in", a.cur.cert.Leaf.NotAfter.Sub(a.now()).Round(time.Second),
			"renew_at", a.cur.renewAt)
	}
	if a.cfg.Once {
		return a.runOnce(ctx)
	}
	for {
		if !a.due() {
			if !sleep(ctx, a.wakeAt().Sub(a.now())) {
				return nil
			}
			a.checkRenewalInfo(ctx)
			continue
		}
		p, err := a.renewWithRetry(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		if err != nil {
			return err
		}
		_ = a.notify(ctx, p) // logged and counted; the certificate stays
	}
}

// runOnce is Run for Once: renew if due, retrying retryable failures until
// OnceTimeout, and fail if the hook fails, so whatever runs the agent (an
// init container, cron) sees the failure.
func (a *Agent) runOnce(ctx context.Context) error {
	if !a.due() {
		return nil
	}
	timeout := cmp.Or(a.cfg.OnceTimeout, DefaultOnceTimeout)
	rctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("--once-timeout %v passed", timeout))
	defer cancel()
	p, err := a.renewWithRetry(rctx)
	if err != nil && a.validNow() {
		// --once promises a valid certificate on disk, and one is.
		a.log.Warn("Renewal failed, but the certificate on disk is still valid",
			"expires_in", a.cur.cert.Leaf.NotAfter.Sub(a.now()).Round(time.Second))
		return nil
	}
	if err != nil {
		return err
	}
	// The hook gets its own ExecTimeout, not what is left of OnceTimeout.
	return a.notify(ctx, p)
}

// renewWithRetry renews until it succeeds, backing off between attempts,
// and returns the pair it put on disk. Refusals that cannot succeed as
// they are wait the longest; renewal goes on anyway, since the token or the
// CA's policy may change. In Once mode it gives up at the first refusal, or
// at the first failure while the certificate on disk is still valid; ctx
// bounds the rest. When ctx ends it returns the last failure with ctx's
// cause, or the cause alone if no attempt failed.
func (a *Agent) renewWithRetry(ctx context.Context) (*issuedPair, error) {
	var last error
	for attempt := 0; ; attempt++ {
		p, err := a.renew(ctx)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return nil, stopped(ctx, last)
		}
		last = err
		a.metrics.failed(err)
		retryable := rotor.ErrorCodeOf(err).Retryable()
		if a.cfg.Once && (!retryable || a.validNow()) {
			a.logFailure(err, retryable, attempt, 0)
			return nil, err
		}
		wait := a.retryWait(err, attempt)
		a.logFailure(err, retryable, attempt, wait)
		a.noteExpired()
		if !sleep(ctx, wait) {
			return nil, stopped(ctx, last)
		}
	}
}

// stopped is renewWithRetry's answer once ctx has ended.
func stopped(ctx context.Context, last error) error {
	if last == nil || errors.Is(ctx.Err(), context.Canceled) {
		return context.Cause(ctx)
	}
	return fmt.Errorf("%w; the last attempt: %w", context.Cause(ctx), last)
}

// retryWait is how long to wait after attempt failed with err: the
// jittered backoff, or its cap after a refusal, or the CA's Retry-After if
// that is longer. The CA knows its outage or its limit better than the
// backoff does, so a Retry-After beyond the cap is honoured too, with one
// exception: no wait runs past the last moment the certificate on disk can
// still authenticate its renewal (renewableUntil), nor past its expiry.
// Sleeping through either leaves the workload without a valid certificate
// for want of one attempt, which costs the CA little; and the attempt at
// expiry makes EventExpired as punctual as the expiry. Once the certificate
// has expired there is nothing left to save, and the CA gets its wish.
func (a *Agent) retryWait(err error, attempt int) time.Duration {
	b := backoffFor(a.lifetime())
	wait := b.Delay(attempt, a.rand())
	if !rotor.ErrorCodeOf(err).Retryable() {
		wait = b.Cap
	}
	wait = max(wait, client.RetryAfter(err))
	if a.cur == nil {
		return wait
	}
	now := a.now()
	for _, deadline := range []time.Time{a.renewableUntil(), a.cur.cert.Leaf.NotAfter} {
		if left := deadline.Sub(now); left > 0 {
			return min(wait, left)
		}
	}
	return wait
}

// sleep waits d or until ctx ends, reporting whether it waited all of d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// due reports whether a new certificate is needed now.
func (a *Agent) due() bool { return a.cur == nil || !a.now().Before(a.cur.renewAt) }

// validNow reports whether the current certificate is within its validity.
func (a *Agent) validNow() bool {
	now := a.now()
	return a.cur != nil && !now.Before(a.cur.cert.Leaf.NotBefore) && now.Before(a.cur.cert.Leaf.NotAfter)
}

// renewableUntil is the last moment the current certificate can
// authenticate its own renewal: its expiry less a margin for the round
// trip, a twentieth of its lifetime and at most a second.
func (a *Agent) renewableUntil() time.Time {
	return a.cur.cert.Leaf.NotAfter.Add(-min(a.lifetime()/20, time.Second))
}

// lifetime is the current certificate's, else the requested TTL, else 0.
func (a *Agent) lifetime() time.Duration {
	if a.cur != nil {
		return a.cur.cert.Leaf.NotAfter.Sub(a.cur.issuedAt)
	}
	return a.cfg.TTL
}

// diskExpiry is when the certificate in OutDir expires, whether or not the
// agent could adopt it; zero if there is none.
func (a *Agent) diskExpiry() time.Time {
	if a.cur != nil {
		return a.cur.cert.Leaf.NotAfter
	}
	return a.foundExpiry
}

// noteExpired logs EventExpired once the certificate on disk has expired:
// from then on the workload has no valid certificate, which someone must
// hear about. Once per lapse, not once per retry.
func (a *Agent) noteExpired() {
	exp := a.diskExpiry()
	if a.lapsed || exp.IsZero() || a.now().Before(exp) {
		return
	}
	a.lapsed = true
	a.log.Error("The certificate on disk has expired and no new one could be put in place; the workload has no valid certificate",
		rotor.LogEvent, EventExpired, "expired_at", exp, "out_dir", a.cfg.OutDir)
}

// logFailure says what went wrong and what happens next. A failure that
// cannot succeed as it is gets ERROR, since someone must act; a refusal by
// the CA gets its problem's status, instance and detail, so the CA's log
// line can be found.
func (a *Agent) logFailure(err error, retryable bool, attempt int, wait time.Duration) {
	attrs := []any{rotor.LogEvent, EventFailed, "cause", causeOf(err), "attempt", attempt + 1, "error", err}
	if wait > 0 {
		attrs = append(attrs, "retry_in", wait.Round(time.Millisecond))
	}
	if a.cur != nil {
		attrs = append(attrs, "current_expires_in", a.cur.cert.Leaf.NotAfter.Sub(a.now()).Round(time.Second))
	}
	if retryable {
		a.log.Warn("Certificate request failed; retrying", attrs...)
		return
	}
	var p *client.Problem
	if !errors.As(err, &p) {
		a.log.Error("Certificate request failed and will not succeed until the configuration changes", attrs...)
		return
	}
	attrs = append(attrs, "status", p.Status, "instance", p.Instance, "detail", rotor.ErrorMessageOf(err))
	a.log.Error("Certificate request refused; it will not succeed until the credentials, the request or the CA's policy change", attrs...)
}

func serialOf(c *x509.Certificate) string { return c.SerialNumber.Text(16) }
