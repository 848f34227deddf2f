package api

import (
	"context"
	"crypto"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rotor-dev/rotor"
)

// Metrics is the CA's Prometheus instrumentation, on a registry of its own
// (no global state, so tests and several servers in one process do not
// collide). Its decorators wrap the core's interfaces, so the core never
// imports prometheus. Safe for concurrent use.
type Metrics struct {
	registry      *prometheus.Registry
	issuances     prometheus.Counter
	refusals      *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	storeDuration *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	signDuration  prometheus.Histogram
	signErrors    prometheus.Counter
}

// NewMetrics registers Rotor's metrics, plus the Go runtime and process
// collectors, on a new registry.
func NewMetrics() *Metrics {
	// Issuance takes a few hundred microseconds and a commit a few
	// milliseconds; the default buckets start at 5ms and would hide both.
	fast := prometheus.ExponentialBuckets(0.0001, 2.5, 12) // 100us .. ~6s
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		issuances: prometheus.NewCounter(prometheus.CounterOpts{Name: "rotor_issuances_total",
			Help: "Certificates issued and answered with 201."}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rotor_refusals_total",
			Help: "Issuance requests refused, by error code."}, []string{"reason"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rotor_http_request_duration_seconds",
			Help: "HTTP request duration by route pattern and status code.", Buckets: fast}, []string{"route", "code"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rotor_store_duration_seconds",
			Help: "Store call duration by operation.", Buckets: fast}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rotor_store_errors_total",
			Help: "Store calls that failed, by operation."}, []string{"op"}),
		signDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rotor_signer_duration_seconds",
			Help: "Issuing-key signature duration.", Buckets: fast}),
		signErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "rotor_signer_errors_total",
			Help: "Issuing-key signatures that failed."}),
	}
	m.registry.MustRegister(m.issuances, m.refusals, m.httpDuration, m.storeDuration, m.storeErrors,
		m.signDuration, m.signErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every reason exists from the start at zero, so rate() and alerts work
	// before the first refusal of a kind.
	for _, c := range rotor.ErrorCodes {
		m.refusals.WithLabelValues(string(c))
	}
	return m
}

// Registry is the registry the metrics live on, for the wiring to add its
// own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// observeRequest records one HTTP request; route is chi's pattern.
func (m *Metrics) observeRequest(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.httpDuration.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

// issued counts one issuance answered 201.
func (m *Metrics) issued() { m.issuances.Inc() }

// refused counts one refused issuance request by its code.
func (m *Metrics) refused(code rotor.ErrorCode) { m.refusals.WithLabelValues(string(code)).Inc() }

// Signer wraps s so each signature's duration and failure is counted. The
// result has s's public key, so rotor.NewIssuer accepts it in s's place.
func (m *Metrics) Signer(s rotor.Signer) rotor.Signer { return metricSigner{s: s, m: m} }

type metricSigner struct {
	s rotor.Signer
	m *Metrics
}

func (ms metricSigner) Public() crypto.PublicKey { return ms.s.Public() }

func (ms metricSigner) Sign(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	start := time.Now()
	sig, err := ms.s.Sign(ctx, digest, opts)
	ms.m.signDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		ms.m.signErrors.Inc()
	}
	return sig, err
}

// AuditLog wraps a so each record's commit time and failure is counted
// under op "record_issuance" or "record_refusal".
func (m *Metrics) AuditLog(a rotor.AuditLog) rotor.AuditLog { return metricAudit{a: a, m: m} }

type metricAudit struct {
	a rotor.AuditLog
	m *Metrics
}

func (ma metricAudit) RecordIssuance(ctx context.Context, iss *rotor.Issuance) error {
	return ma.m.timeStore("record_issuance", func() error { return ma.a.RecordIssuance(ctx, iss) })
}

func (ma metricAudit) RecordRefusal(ctx context.Context, r *rotor.Refusal) error {
	return ma.m.timeStore("record_refusal", func() error { return ma.a.RecordRefusal(ctx, r) })
}

// finder wraps the API's own lookups under op "issuance".
func (m *Metrics) finder(f rotor.IssuanceFinder) rotor.IssuanceFinder {
	return metricFinder{f: f, m: m}
}

type metricFinder struct {
	f rotor.IssuanceFinder
	m *Metrics
}

func (mf metricFinder) Issuance(ctx context.Context, serial string) (iss *rotor.Issuance, err error) {
	err = mf.m.timeStore("issuance", func() error {
		iss, err = mf.f.Issuance(ctx, serial)
		return err
	})
	return iss, err
}

// timeStore runs one store call and records it. A not-found answer is the
// store working, so only other errors count as failures.
func (m *Metrics) timeStore(op string, call func() error) error {
	start := time.Now()
	err := call()
	m.storeDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && rotor.ErrorCodeOf(err) != rotor.ENotFound {
		m.storeErrors.WithLabelValues(op).Inc()
	}
	return err
}
