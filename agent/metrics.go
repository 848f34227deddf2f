package agent

import (
	"crypto/tls"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/buildinfo"
)

// metrics are the agent's own Prometheus registry: no global state, and no
// Go runtime series beyond what is registered here.
type metrics struct {
	registry *prometheus.Registry
	cert     *certCollector
	renewals prometheus.Counter
	failures *prometheus.CounterVec
	// renewalInfoPolls counts the CA's answers to renewal-info polls,
	// renewalInfoFailures the polls that got none, by cause.
	renewalInfoPolls    prometheus.Counter
	renewalInfoFailures *prometheus.CounterVec
}

func newMetrics(now func() time.Time) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		cert:     &certCollector{now: now},
		renewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "rotor_agent_renewals_total",
			Help: "New certificates written to disk."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rotor_agent_failures_total",
			Help: "Failed attempts by cause: a Rotor error code (the CA's answer or refusal; ca-unreachable: no answer; ca-untrusted: TLS verification or the fingerprint pin failed), or the agent's own token, write, verify, key, hook."}, []string{"cause"}),
		renewalInfoPolls: prometheus.NewCounter(prometheus.CounterOpts{Name: "rotor_agent_renewal_info_polls_total",
			Help: "Renewal-info polls the CA answered."}),
		renewalInfoFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rotor_agent_renewal_info_failures_total",
			Help: "Renewal-info polls that failed, by Rotor error code; the renewal schedule is left as it was."}, []string{"cause"}),
	}
	m.registry.MustRegister(m.cert, m.renewals, m.failures, m.renewalInfoPolls, m.renewalInfoFailures,
		buildinfo.Read().Collector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every cause exists from the start at zero, so rate() and alerts work
	// before the first failure of a kind.
	for _, c := range rotor.ErrorCodes {
		m.failures.WithLabelValues(string(c))
		m.renewalInfoFailures.WithLabelValues(string(c))
	}
	for _, c := range agentCauses {
		m.failures.WithLabelValues(c)
	}
	return m
}

// failed counts err under its cause.
func (m *metrics) failed(err error) {
	m.failures.WithLabelValues(causeOf(err)).Inc()
	m.cert.attemptFailed()
}

// renewalInfoFailed counts a failed renewal-info poll under its cause.
func (m *metrics) renewalInfoFailed(err error) {
	m.renewalInfoFailures.WithLabelValues(causeOf(err)).Inc()
}

// agentCauses name the failures that happen in the agent, not at the CA:
// the token file missing or empty, OutDir not writable, an issued
// certificate that does not verify, a key that cannot be made or encoded,
// a failing hook.
var agentCauses = []string{"token", "write", "verify", "key", "hook"}

// cause marks an agent-side failure so metrics can name it; failures at or
// on the way to the CA are named by their rotor.ErrorCode.
type cause struct {
	name string
	err  error
}

func (c *cause) Error() string { return c.err.Error() }
func (c *cause) Unwrap() error { return c.err }

func withCause(name string, err error) error { return &cause{name: name, err: err} }

func causeOf(err error) string {
	var c *cause
	if errors.As(err, &c) {
		return c.name
	}
	return string(rotor.ErrorCodeOf(err))
}

// Handler serves /livez, /readyz, /healthz and /metrics. /livez answers
// 200 while the process serves at all: a liveness probe on it never
// restarts an agent for a CA outage, which a restart cannot fix. /readyz
// answers 200 only while the files on disk form a key pair whose
// certificate is valid now, read from disk on each request so it reports
// what the workload would load; /healthz is /readyz under its old name.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		plain(w)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.serveReady)
	mux.HandleFunc("GET /healthz", a.serveReady)
	return mux
}

// plain sets the headers of a probe's answer: text, never cached.
func plain(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
}

// serveReady answers whether a valid certificate is on disk now.
func (a *Agent) serveReady(w http.ResponseWriter, _ *http.Request) {
	plain(w)
	left, err := a.validOnDisk()
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("no valid certificate: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok: certificate valid for " + left.Round(time.Second).String() + "\n"))
}

// validOnDisk checks the files on disk now and returns the time left.
func (a *Agent) validOnDisk() (time.Duration, error) {
	f, _, err := client.ReadFiles(a.cfg.OutDir)
	if err != nil {
		return 0, err
	}
	pair, err := tls.X509KeyPair(f.Cert, f.Key)
	if err != nil {
		return 0, err
	}
	now := a.now()
	if now.Before(pair.Leaf.NotBefore) || !now.Before(pair.Leaf.NotAfter) {
		return 0, errors.New("certificate expired or not yet valid")
	}
	return pair.Leaf.NotAfter.Sub(now), nil
}
