package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rotor-dev/rotor"
)

// Metrics is the HTTP API's Prometheus instrumentation: requests, and the
// outcome of every issuance request, decided here where the answer is. It
// lives on a registry the wiring owns (no global state, so tests and
// several servers in one process do not collide); the store and the signer
// register their own series on the same registry. Safe for concurrent use.
type Metrics struct {
	registry     *prometheus.Registry
	issuances    *prometheus.CounterVec
	refusals     *prometheus.CounterVec
	abandoned    prometheus.Counter
	httpDuration *prometheus.HistogramVec
}

// NewMetrics registers the API's metrics on reg, plus the Go runtime and
// process collectors; nil reg means a new registry.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	// An issuance takes a few hundred microseconds; the default buckets
	// start at 5ms and would hide it.
	fast := prometheus.ExponentialBuckets(0.0001, 2.5, 12) // 100us .. ~6s
	m := &Metrics{
		registry: reg,
		issuances: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rotor_issuances_total",
			Help: "Certificates issued and answered with 201, by the authenticator that admitted the caller (token, mtls, jwt, tokenreview)."},
			[]string{"authenticator"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rotor_refusals_total",
			Help: "Issuance requests refused, by error code."}, []string{"reason"}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{Name: "rotor_issuance_requests_abandoned_total",
			Help: "Issuance requests whose client hung up before the answer (not counted in rotor_refusals_total)."}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rotor_http_request_duration_seconds",
			Help: "HTTP request duration by route pattern and status code.", Buckets: fast}, []string{"route", "code"}),
	}
	m.registry.MustRegister(m.issuances, m.refusals, m.abandoned, m.httpDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every reason exists from the start at zero, so rate() and alerts work
	// before the first refusal of a kind.
	for _, c := range rotor.ErrorCodes {
		m.refusals.WithLabelValues(string(c))
	}
	return m
}

// Registry is the registry the metrics live on, served at /metrics.
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

// issued counts one issuance answered 201 under the caller's
// authenticator: a fleet that stops renewing over mTLS and falls back to
// tokens shows here.
func (m *Metrics) issued(authenticator string) { m.issuances.WithLabelValues(authenticator).Inc() }

// refused counts one refused issuance request by its code.
func (m *Metrics) refused(code rotor.ErrorCode) { m.refusals.WithLabelValues(string(code)).Inc() }
