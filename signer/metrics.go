package signer

import (
	"context"
	"crypto"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts issuing-key signatures: their duration and failures. Make
// one per registry and instrument each key with it, so that the series
// survive an issuer rotation. Safe for concurrent use.
type Metrics struct {
	duration prometheus.Histogram
	errors   prometheus.Counter
}

// NewMetrics registers the signer's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		// A file key signs in tens of microseconds, an HSM or KMS in
		// milliseconds; the default buckets start at 5ms and would hide both.
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rotor_signer_duration_seconds",
			Help: "Issuing-key signature duration.", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12)}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "rotor_signer_errors_total",
			Help: "Issuing-key signatures that failed."}),
	}
	reg.MustRegister(m.duration, m.errors)
	return m
}

// Instrument wraps k so each signature is timed and each failure counted.
// The result has k's public key, so rotor.NewIssuer accepts it in k's
// place, and its Close closes k.
func (m *Metrics) Instrument(k Key) Key { return instrumented{Key: k, m: m} }

type instrumented struct {
	Key
	m *Metrics
}

func (i instrumented) Sign(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	start := time.Now()
	sig, err := i.Key.Sign(ctx, digest, opts)
	i.m.duration.Observe(time.Since(start).Seconds())
	// A caller that hung up says nothing about the backend (Monitored
	// does not count it either); a timeout does.
	if err != nil && !errors.Is(ctx.Err(), context.Canceled) {
		i.m.errors.Inc()
	}
	return sig, err
}
