package signer

import (
	"context"
	"crypto"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/rotor-dev/rotor"
)

// MonitorConfig tunes Monitored. Zero fields take the defaults shown.
type MonitorConfig struct {
	// SignTimeout bounds each signature on top of the caller's ctx, so a
	// hung backend costs a request at most this long. Default 2s.
	SignTimeout time.Duration
	// FailureThreshold is how many consecutive failed signatures make the
	// signer unhealthy. Default 3.
	FailureThreshold int
	// ProbeInterval is the wait before the first recovery probe; it doubles
	// up to ProbeMaxInterval. Defaults 200ms and 5s.
	ProbeInterval    time.Duration
	ProbeMaxInterval time.Duration
	Logger           *slog.Logger
}

func (c MonitorConfig) withDefaults() MonitorConfig {
	if c.SignTimeout <= 0 {
		c.SignTimeout = 2 * time.Second
	}
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = 3
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 200 * time.Millisecond
	}
	if c.ProbeMaxInterval < c.ProbeInterval {
		c.ProbeMaxInterval = max(5*time.Second, c.ProbeInterval)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Monitored wraps a signer with a per-signature deadline and a circuit
// breaker. After FailureThreshold consecutive failures (not counting
// callers that gave up) it turns unhealthy: Sign and Check then fail at
// once with ESignerUnavailable instead of piling requests onto a dead
// backend, while a background probe makes real test signatures, verified
// with the public key, with backoff, and turns it healthy when one passes.
// It is safe for concurrent use and is itself a Key.
type Monitored struct {
	s   Key
	cfg MonitorConfig

	failures atomic.Int64
	healthy  atomic.Bool
	lastErr  atomic.Pointer[error] // the failure that made it unhealthy

	stopper
}

// NewMonitored wraps s, which starts out healthy. Monitored owns s: Close
// closes it.
func NewMonitored(s Key, cfg MonitorConfig) *Monitored {
	m := &Monitored{s: s, cfg: cfg.withDefaults(), stopper: newStopper()}
	m.healthy.Store(true)
	return m
}

// Public implements rotor.Signer.
func (m *Monitored) Public() crypto.PublicKey { return m.s.Public() }

// Healthy reports whether the last signatures succeeded (or a probe has
// since).
func (m *Monitored) Healthy() bool { return m.healthy.Load() }

// Sign implements rotor.Signer with SignTimeout on top of ctx. Errors from
// the backend are passed through; a timeout is ESignerUnavailable.
func (m *Monitored) Sign(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if !m.healthy.Load() {
		return nil, m.unhealthyError()
	}
	sctx, cancel := context.WithTimeout(ctx, m.cfg.SignTimeout)
	defer cancel()
	sig, err := m.s.Sign(sctx, digest, opts)
	if err == nil {
		m.failures.Store(0)
		return sig, nil
	}
	if ctx.Err() != nil {
		return nil, err // the caller gave up; that says nothing about the backend
	}
	if sctx.Err() != nil && rotor.ErrorCodeOf(err) != rotor.ESignerUnavailable {
		err = rotor.WrapError(rotor.ESignerUnavailable, err, "signature took longer than %s", m.cfg.SignTimeout)
	}
	m.fail(err)
	return nil, err
}

// Check is the readiness check: rotor.CheckSigner through Sign, so that it
// counts towards health.
func (m *Monitored) Check(ctx context.Context) error {
	if !m.healthy.Load() {
		return m.unhealthyError()
	}
	err := rotor.CheckSigner(ctx, m)
	if errors.Is(err, rotor.ErrBadSignature) {
		// Sign saw a "success"; a key that signs wrongly is worse than a
		// backend that is down, so no threshold applies.
		m.trip(err)
	}
	return err
}

func (m *Monitored) unhealthyError() error {
	var cause error
	if p := m.lastErr.Load(); p != nil {
		cause = *p
	}
	return rotor.WrapError(rotor.ESignerUnavailable, cause, "signer is unhealthy; waiting for it to recover")
}

func (m *Monitored) fail(err error) {
	if m.failures.Add(1) >= int64(m.cfg.FailureThreshold) {
		m.trip(err)
	}
}

// trip turns m unhealthy and starts the probe.
func (m *Monitored) trip(err error) {
	m.lastErr.Store(&err)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped || !m.healthy.CompareAndSwap(true, false) {
		return
	}
	m.cfg.Logger.Warn("signer unhealthy; probing until it recovers",
		"consecutive_failures", m.failures.Load(), "error", err)
	m.goLocked(m.probe)
}

// probe makes test signatures with backoff until one verifies or Close.
func (m *Monitored) probe() {
	wait := m.cfg.ProbeInterval
	for attempt := 1; m.sleep(wait); attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.SignTimeout)
		err := rotor.CheckSigner(ctx, m.s)
		cancel()
		if err == nil {
			m.failures.Store(0)
			m.healthy.Store(true)
			m.cfg.Logger.Info("signer healthy again", "probes", attempt)
			return
		}
		m.lastErr.Store(&err)
		wait = min(2*wait, m.cfg.ProbeMaxInterval)
	}
}

// Close stops the probe and closes the wrapped key.
func (m *Monitored) Close() error {
	if !m.stop() {
		return nil
	}
	return m.s.Close()
}
