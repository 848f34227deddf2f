package store

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rotor-dev/rotor"
)

// metrics times the store's calls. A nil *metrics times nothing.
type metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		// A group commit takes milliseconds, a lookup less; the default
		// buckets start at 5ms and would hide both.
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rotor_store_duration_seconds",
			Help: "Store call duration by operation.", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12)},
			[]string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rotor_store_errors_total",
			Help: "Store calls that failed, by operation."}, []string{"op"}),
	}
	reg.MustRegister(m.duration, m.errors)
	// The operations every issuance goes through exist from the start at
	// zero, so rate() and the store alert work before the first failure.
	for _, op := range []string{"lookup_token", "record_issuance", "record_refusal"} {
		m.errors.WithLabelValues(op)
	}
	return m
}

// time runs one store call and records it. A not-found answer is the store
// working, and a caller that hung up (context.Canceled) left before it
// answered, so only other errors count as failures.
func (m *metrics) time(op string, call func() error) error {
	if m == nil {
		return call()
	}
	start := time.Now()
	err := call()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && rotor.ErrorCodeOf(err) != rotor.ENotFound && !errors.Is(err, context.Canceled) {
		m.errors.WithLabelValues(op).Inc()
	}
	return err
}

// timed is time for a call that returns a value.
func timed[T any](m *metrics, op string, call func() (T, error)) (v T, err error) {
	err = m.time(op, func() error {
		v, err = call()
		return err
	})
	return v, err
}
