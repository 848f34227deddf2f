package agent

import (
	"crypto/x509"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rotor-dev/rotor"
)

// certLabels name the identity a certificate series is about, as
// cert-manager's certmanager_certificate_* series name a Certificate by
// name and namespace: alerts written for one read the other.
var certLabels = []string{"namespace", "service_account"}

// readyConditions are the values of the condition label, cert-manager's.
var readyConditions = []string{"True", "False", "Unknown"}

var (
	expirationDesc = prometheus.NewDesc("rotor_agent_certificate_expiration_timestamp_seconds",
		"NotAfter of the certificate the agent holds on disk, Unix seconds.", certLabels, nil)
	renewalDesc = prometheus.NewDesc("rotor_agent_certificate_renewal_timestamp_seconds",
		"When the agent plans to renew the certificate on disk, Unix seconds; past it, the renewal is overdue.", certLabels, nil)
	readyDesc = prometheus.NewDesc("rotor_agent_certificate_ready_status",
		"1 for the condition that holds: True while the certificate on disk is valid now, False once it expired or when none could be had, Unknown before the first attempt.",
		append([]string{"condition"}, certLabels...), nil)
)

// certCollector reports the certificate the agent holds. Run updates it and
// scrapes read it, so it has its own lock; readiness is judged at scrape
// time, so an expiry shows even while the agent sleeps in a backoff.
type certCollector struct {
	now func() time.Time

	mu        sync.Mutex
	held      bool // a certificate is on disk; the fields below describe it
	identity  rotor.Identity
	notBefore time.Time
	notAfter  time.Time
	renewAt   time.Time
	failed    bool // an attempt failed; without a certificate, not ready
}

// certificate records leaf, for identity id, as the one on disk.
func (c *certCollector) certificate(id rotor.Identity, leaf *x509.Certificate, renewAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held, c.identity, c.notBefore, c.notAfter = true, id, leaf.NotBefore, leaf.NotAfter
	c.setRenewal(renewAt)
}

// renewal records a new renewal plan for the certificate on disk.
func (c *certCollector) renewal(renewAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setRenewal(renewAt)
}

// setRenewal stores renewAt; zero means due now, which is reported as the
// moment it was planned so an overdue alert counts from then. c.mu is held.
func (c *certCollector) setRenewal(renewAt time.Time) {
	if renewAt.IsZero() {
		renewAt = c.now()
	}
	c.renewAt = renewAt
}

// attemptFailed notes a failed attempt.
func (c *certCollector) attemptFailed() {
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *certCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- expirationDesc
	ch <- renewalDesc
	ch <- readyDesc
}

// Collect implements prometheus.Collector.
func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, sa := c.identity.Namespace, c.identity.ServiceAccount
	ready := "Unknown"
	if c.held {
		ch <- prometheus.MustNewConstMetric(expirationDesc, prometheus.GaugeValue, float64(c.notAfter.Unix()), ns, sa)
		ch <- prometheus.MustNewConstMetric(renewalDesc, prometheus.GaugeValue, float64(c.renewAt.Unix()), ns, sa)
		now := c.now()
		ready = "False"
		if !now.Before(c.notBefore) && now.Before(c.notAfter) {
			ready = "True"
		}
	} else if c.failed {
		ready = "False"
	}
	for _, cond := range readyConditions {
		v := 0.0
		if cond == ready {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, v, cond, ns, sa)
	}
}
