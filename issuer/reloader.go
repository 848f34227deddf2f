package issuer

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rotor-dev/rotor"
)

// BundleRecorder remembers which roots a bundle the CA serves holds, so
// root rotation can match what agents report (store.Store implements it).
type BundleRecorder interface {
	RecordBundle(ctx context.Context, b *rotor.Bundle, at time.Time) error
}

// ReloaderConfig wires a Reloader. Loader is required.
type ReloaderConfig struct {
	Loader *Loader
	// Bundles, if set, records every bundle served.
	Bundles BundleRecorder
	// Interval is how often the files are checked for changes; zero
	// means on a signal only.
	Interval time.Duration
	// RetireGrace is how long a replaced signer stays open for the
	// requests that took the old issuer before the swap (each bounded by
	// its signature deadline and the API's request timeout); zero means a
	// minute.
	RetireGrace time.Duration
	// Registerer, if set, receives the reload metrics.
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Reloader serves the CA's trust and swaps in a new one on a signal and
// when the files it is built from change. A configuration that does not
// load is refused with an ERROR line and the current trust keeps serving;
// requests in flight finish with the issuer they started with. It also
// records each bundle it serves, retrying until the store takes it.
//
// Trust and CheckSigner are safe for concurrent use; Run owns the rest,
// and Close comes after Run has returned.
type Reloader struct {
	cfg ReloaderConfig
	log *slog.Logger
	cur atomic.Pointer[Loaded]

	// Owned by Run.
	digest      string // of the files at the last attempt
	recorded    string // fingerprint of the last bundle stored
	recordError string // fingerprint whose failure was logged
	retired     []retired

	reloads     *prometheus.CounterVec
	notAfter    prometheus.Gauge
	roots       prometheus.Gauge
	rootsExpiry *prometheus.GaugeVec
	// exportedRoots are rootsExpiry's series, written by observe only
	// (New, then the Run goroutine).
	exportedRoots []exportedRoot
}

// retired is a replaced signer, closed by its timer unless Close comes
// first.
type retired struct {
	l     *Loaded
	timer *time.Timer
}

// Events the reloader logs as rotor.LogEvent.
const (
	// EventReloaded: a new issuer or bundle is serving. Attributes:
	// trigger, issuer_key_id, bundle_fingerprint, roots.
	EventReloaded = "trust.reloaded"
	// EventReloadRefused: a new configuration did not load. Attributes:
	// trigger, error.
	EventReloadRefused = "trust.reload_refused"
)

// NewReloader loads the trust (a failure is the caller's to report) and
// returns a Reloader serving it.
func NewReloader(ctx context.Context, cfg ReloaderConfig) (*Reloader, error) {
	if cfg.RetireGrace <= 0 {
		cfg.RetireGrace = time.Minute
	}
	r := &Reloader{cfg: cfg, log: cfg.Loader.log(),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rotor_trust_reloads_total",
			Help: "Reloads of the issuer and trust bundle, by result: ok, unchanged or refused."}, []string{"result"}),
		notAfter: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rotor_issuer_expiration_timestamp_seconds",
			Help: "Expiry (NotAfter) of the current issuing CA certificate, Unix seconds: alert well before it."}),
		roots: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rotor_bundle_roots",
			Help: "Roots in the trust bundle served at /v1/bundle; more than one during a root rotation."}),
		rootsExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rotor_root_expiration_timestamp_seconds",
			Help: "Expiry (NotAfter) of each root in the trust bundle served, Unix seconds, by the root's SHA-256 and subject."},
			[]string{"root_fingerprint", "subject"}),
	}
	if cfg.Log != nil {
		r.log = cfg.Log
	}
	// The digest is taken before loading, so a change during the load is
	// noticed at the next check.
	r.digest = cfg.Loader.Digest()
	cur, err := cfg.Loader.Load(ctx, nil)
	if err != nil {
		return nil, err
	}
	r.cur.Store(cur)
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(r.reloads, r.notAfter, r.roots, r.rootsExpiry)
	}
	for _, res := range []string{"ok", "unchanged", "refused"} {
		r.reloads.WithLabelValues(res)
	}
	r.observe()
	return r, nil
}

// Trust implements rotor.TrustSource.
func (r *Reloader) Trust() *rotor.Trust { return r.cur.Load().Trust }

// CheckSigner is the readiness check of the current issuing key: a test
// signature through its health monitor, so a signer swapped in by a
// rotation is the one checked.
func (r *Reloader) CheckSigner(ctx context.Context) error { return r.cur.Load().Key.Check(ctx) }

// observe sets the trust series to what is serving now. The root series
// start afresh, so a root taken out of the bundle stops being reported
// (and stops firing its expiry alert).
func (r *Reloader) observe() {
	t := r.Trust()
	r.notAfter.Set(float64(t.Issuer.Certificate.NotAfter.Unix()))
	r.roots.Set(float64(len(t.Bundle.Roots)))
	// Set the bundle's roots, then drop the series of roots no longer in
	// it: a Reset first would leave a scrape in between with no roots.
	var next []exportedRoot
	for _, root := range t.Bundle.Roots {
		e := exportedRoot{rotor.Fingerprint(root.Raw), root.Subject.String()}
		r.rootsExpiry.WithLabelValues(e.fp, e.subject).Set(float64(root.NotAfter.Unix()))
		next = append(next, e)
	}
	for _, old := range r.exportedRoots {
		if !slices.Contains(next, old) {
			r.rootsExpiry.DeleteLabelValues(old.fp, old.subject)
		}
	}
	r.exportedRoots = next
}

// exportedRoot is the labels of one root's expiry series.
type exportedRoot struct{ fp, subject string }

// Run reloads on each signal from hup and, every Interval, when the files
// changed; it returns when ctx ends.
func (r *Reloader) Run(ctx context.Context, hup <-chan os.Signal) {
	r.record(ctx)
	var tick <-chan time.Time
	if r.cfg.Interval > 0 {
		t := time.NewTicker(r.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.Reload(ctx, "SIGHUP")
		case <-tick:
			if r.cfg.Loader.Digest() != r.digest {
				r.Reload(ctx, "files changed")
			}
			r.record(ctx)
		}
	}
}

// Reload loads the configuration afresh and swaps it in if it loads. Only
// Run's goroutine, or a test in its place, may call it.
func (r *Reloader) Reload(ctx context.Context, trigger string) {
	r.digest = r.cfg.Loader.Digest()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	prev := r.cur.Load()
	next, err := r.cfg.Loader.Load(lctx, prev)
	cancel()
	old := prev.Trust
	if err != nil {
		r.reloads.WithLabelValues("refused").Inc()
		r.log.Error("refused the new issuer configuration; still serving the previous one", rotor.LogEvent,
			EventReloadRefused, "trigger", trigger, "error", err, "issuer_key_id", old.Issuer.KeyID,
			"bundle_fingerprint", old.Bundle.Fingerprint)
		return
	}
	issuerChanged := !bytes.Equal(next.Trust.Issuer.ChainPEM, old.Issuer.ChainPEM) || next.Key != prev.Key
	bundleChanged := next.Trust.Bundle.Fingerprint != old.Bundle.Fingerprint
	if !issuerChanged && !bundleChanged {
		r.reloads.WithLabelValues("unchanged").Inc()
		r.log.Info("reload: issuer and trust bundle unchanged", "trigger", trigger)
		return
	}
	r.cur.Store(next)
	if next.Key != prev.Key {
		r.retired = append(r.retired, retired{l: prev, timer: time.AfterFunc(r.cfg.RetireGrace, prev.Close)})
	}
	r.reloads.WithLabelValues("ok").Inc()
	r.observe()
	iss := next.Trust.Issuer
	r.log.Info("reloaded the issuer and trust bundle", rotor.LogEvent, EventReloaded, "trigger", trigger,
		"issuer_changed", issuerChanged, "bundle_changed", bundleChanged, "issuer_key_id", iss.KeyID,
		"issuer", iss.Certificate.Subject.String(), "issuer_not_after", iss.Certificate.NotAfter,
		"bundle_fingerprint", next.Trust.Bundle.Fingerprint, "roots", len(next.Trust.Bundle.Roots))
	r.record(ctx)
}

// record stores the current bundle's roots once, so `rotor-ca roots
// status` can match what agents report. A store that cannot take it now is
// asked again at the next tick; the failure is logged once per bundle.
func (r *Reloader) record(ctx context.Context) {
	b := r.Trust().Bundle
	if r.cfg.Bundles == nil || r.recorded == b.Fingerprint {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.cfg.Bundles.RecordBundle(rctx, b, r.cfg.Loader.now()); err != nil {
		if ctx.Err() != nil {
			return // shutting down; the next start records it
		}
		if r.recordError != b.Fingerprint {
			r.recordError = b.Fingerprint
			r.log.Error("could not record the trust bundle in the store; roots status will not count it until it is; retrying",
				"bundle_fingerprint", b.Fingerprint, "error", err)
		}
		return
	}
	r.recorded = b.Fingerprint
	r.log.Info("recorded the trust bundle's roots in the store", "bundle_fingerprint", b.Fingerprint, "roots", len(b.Roots))
}

// Close closes the current signer and the retired ones not yet closed.
// Call it once Run has returned and no request is in flight.
func (r *Reloader) Close() {
	for _, s := range r.retired {
		if s.timer.Stop() {
			s.l.Close()
		}
	}
	r.cur.Load().Close()
}
