package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

// retireGrace is how long a replaced signer stays open: requests in flight
// took the old issuer before the swap and sign with it (each signature is
// bounded by --sign-timeout, each request by the API's 30 s).
const retireGrace = time.Minute

// reloader swaps in a new trust on SIGHUP and when the files it is built
// from change. A configuration that does not load is refused with an ERROR
// line and the current trust keeps serving. It also records each bundle it
// serves in the store, retrying until the store takes it. Its fields are
// owned by the goroutine running run; closeAll runs after run returns.
type reloader struct {
	loader  *trustLoader
	holder  *rotor.TrustHolder
	bundles store.BundleRecorder
	log     *slog.Logger

	cur         *loaded
	digest      string // of the files at the last attempt
	recorded    string // fingerprint of the last bundle stored
	recordError string // fingerprint whose failure was logged
	retired     []retiredSigner

	reloads  *prometheus.CounterVec
	notAfter prometheus.Gauge
	roots    prometheus.Gauge
}

type retiredSigner struct {
	l     *loaded
	timer *time.Timer
}

// newReloader serves cur, loaded from files whose digest was taken before
// loading (so a change during the load is noticed), and registers its
// metrics on reg.
func newReloader(loader *trustLoader, cur *loaded, digest string, bundles store.BundleRecorder,
	reg prometheus.Registerer, log *slog.Logger) *reloader {
	r := &reloader{loader: loader, holder: rotor.NewTrustHolder(cur.trust), bundles: bundles, log: log,
		cur: cur, digest: digest,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rotor_trust_reloads_total",
			Help: "Reloads of the issuer and trust bundle, by result: ok, unchanged or refused."}, []string{"result"}),
		notAfter: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rotor_issuer_not_after_seconds",
			Help: "Expiry of the current issuing CA certificate, Unix time: alert well before it."}),
		roots: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rotor_bundle_roots",
			Help: "Roots in the trust bundle served at /v1/bundle; more than one during a root rotation."}),
	}
	reg.MustRegister(r.reloads, r.notAfter, r.roots)
	for _, res := range []string{"ok", "unchanged", "refused"} {
		r.reloads.WithLabelValues(res)
	}
	r.observe()
	return r
}

func (r *reloader) observe() {
	r.notAfter.Set(float64(r.cur.trust.Issuer.Certificate.NotAfter.Unix()))
	r.roots.Set(float64(len(r.cur.trust.Bundle.Roots)))
}

// run reloads on each signal from hup and, every interval (0: never), when
// the files changed; it returns when ctx ends.
func (r *reloader) run(ctx context.Context, hup <-chan os.Signal, interval time.Duration) {
	r.record(ctx)
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload(ctx, "SIGHUP")
		case <-tick:
			if r.loader.digest() != r.digest {
				r.reload(ctx, "files changed")
			}
			r.record(ctx)
		}
	}
}

// reload loads the configuration afresh and swaps it in if it loads.
func (r *reloader) reload(ctx context.Context, trigger string) {
	r.digest = r.loader.digest()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	next, err := r.loader.load(lctx, r.cur)
	cancel()
	old := r.cur.trust
	if err != nil {
		r.reloads.WithLabelValues("refused").Inc()
		r.log.Error("refused the new issuer configuration; still serving the previous one", "trigger", trigger,
			"error", err, "issuer_key_id", old.Issuer.KeyID, "bundle_fingerprint", old.Bundle.Fingerprint)
		return
	}
	issuerChanged := !bytes.Equal(next.trust.Issuer.ChainPEM, old.Issuer.ChainPEM) || next.key != r.cur.key
	bundleChanged := next.trust.Bundle.Fingerprint != old.Bundle.Fingerprint
	if !issuerChanged && !bundleChanged {
		r.reloads.WithLabelValues("unchanged").Inc()
		r.log.Info("reload: issuer and trust bundle unchanged", "trigger", trigger)
		return
	}
	// Requests that already read the old trust finish with it; the old
	// signer stays open for them a while.
	r.holder.Set(next.trust)
	if next.key != r.cur.key {
		r.retired = append(r.retired, retiredSigner{l: r.cur, timer: time.AfterFunc(retireGrace, r.cur.close)})
	}
	r.cur = next
	r.reloads.WithLabelValues("ok").Inc()
	r.observe()
	iss := next.trust.Issuer
	r.log.Info("reloaded the issuer and trust bundle", "trigger", trigger, "issuer_changed", issuerChanged,
		"bundle_changed", bundleChanged, "issuer_key_id", iss.KeyID, "issuer", iss.Certificate.Subject.String(),
		"issuer_not_after", iss.Certificate.NotAfter, "bundle_fingerprint", next.trust.Bundle.Fingerprint,
		"roots", len(next.trust.Bundle.Roots))
	r.record(ctx)
}

// record stores the current bundle's roots once, so `rotor-ca roots
// status` can match what agents report. A store that cannot take it now is
// asked again at the next tick; the failure is logged once per bundle.
func (r *reloader) record(ctx context.Context) {
	b := r.cur.trust.Bundle
	if r.bundles == nil || r.recorded == b.Fingerprint {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.bundles.RecordBundle(rctx, b, time.Now()); err != nil {
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

// closeAll closes the current signer and those not yet closed. Call it
// once run has returned and no request is in flight.
func (r *reloader) closeAll() {
	for _, s := range r.retired {
		if s.timer.Stop() {
			s.l.close()
		}
	}
	r.cur.close()
}
