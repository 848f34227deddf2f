// Package api serves the Rotor CA over HTTPS as described by openapi.yaml:
// issuance, issuance records, the trust bundle, health, readiness and
// metrics. It decides nothing about who gets a certificate; that is
// rotor.CA's job. It turns HTTP into rotor calls and rotor errors into
// RFC 9457 problems.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/crl"
)

// Config wires the HTTP API. CA, Trust and Certificates are required.
type Config struct {
	// CA issues certificates; its policy's trust domain names identities
	// in responses.
	CA *rotor.CA
	// Trust gives the bundle served at GET /v1/bundle.
	Trust rotor.TrustSource
	// Certificates answers GET /v1/certificates and
	// /v1/certificates/{serial}.
	Certificates rotor.CertificateStore
	// CRLs, if set, serves GET /v1/crl and /v1/crl/{issuer_key_id}, the
	// CRL of Trust's current issuer; without it they answer 404.
	CRLs *crl.Cache
	// Ready are the checks behind /readyz (see ReadyCheck).
	Ready []ReadyCheck
	// Metrics receives request, issuance and refusal counts, and its
	// registry is served at /metrics; nil makes a fresh set.
	Metrics *Metrics
	// Logger gets request lines at DEBUG and failures at ERROR; nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxBody caps request bodies; zero means 64 KiB. A CSR is under 4 KiB
	// even with an RSA-8192 key.
	MaxBody int64
	// RequestTimeout bounds each request's context; zero means 30s.
	RequestTimeout time.Duration
	// ReadyTimeout bounds the readiness checks together; zero means 2s.
	ReadyTimeout time.Duration
	// RenewalInfoRetryAfter is the Retry-After of GET
	// /v1/renewal-info/{serial}, whose window comes from Certificates and
	// Trust's issuer; zero means rotor.DefaultRenewalRetryAfter.
	RenewalInfoRetryAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Checkpoints serves the signed audit checkpoints; nil answers 404
	// (the CA has no checkpoint key).
	Checkpoints Checkpoints
	// ACME, if set, is mounted at /acme (package acme's handler), behind
	// the same request logging, metrics, panic recovery and deadline;
	// without it /acme answers 404.
	ACME http.Handler
}

// Checkpoints gives signed checkpoints of the audit chain as signed notes
// (checkpoint.Checkpointer).
type Checkpoints interface {
	// Latest is the newest one (ENotFound before the first).
	Latest(ctx context.Context) ([]byte, error)
	// SignNow signs the chain's head now.
	SignNow(ctx context.Context) ([]byte, error)
}

// server holds the wired handlers' dependencies.
type server struct {
	cfg         Config
	log         *slog.Logger
	metrics     *Metrics
	trustDomain string
	problem     problemWriter
}

// New checks cfg and returns the API's handler, ready to be served over TLS
// with ServerTLSConfig.
func New(cfg Config) (http.Handler, error) {
	if cfg.CA == nil || cfg.Trust == nil || cfg.Certificates == nil {
		return nil, fmt.Errorf("api: CA, Trust and Certificates are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for i, c := range cfg.Ready {
		if err := c.validate(); err != nil {
			return nil, fmt.Errorf("api: ready check %d: %w", i, err)
		}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 2 * time.Second
	}
	s := &server{cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, trustDomain: cfg.CA.Policy().TrustDomain,
		problem: problemWriter{log: cfg.Logger}}

	r := chi.NewRouter()
	// HEAD on every GET resource answers as GET does, without the body.
	r.Use(s.observe, s.recoverPanic, s.timeout, middleware.GetHead)
	r.NotFound(s.problem.notFound)
	r.MethodNotAllowed(s.problem.methodNotAllowed(r))
	r.Post("/v1/certificates", s.issueCertificate)
	r.Get("/v1/certificates", s.listCertificates)
	r.Get("/v1/certificates/{serial}", s.getCertificate)
	r.Post("/v1/certificates/{serial}/revoke", s.revokeCertificate)
	r.Post("/v1/identities/{namespace}/{service_account}/deny", s.denyIdentity)
	r.Post("/v1/identities/{namespace}/{service_account}/allow", s.allowIdentity)
	r.Get("/v1/audit/checkpoint", s.getCheckpoint)
	r.Post("/v1/audit/checkpoint", s.signCheckpoint)
	r.Get("/v1/renewal-info/{serial}", s.getRenewalInfo)
	r.Get("/v1/bundle", s.getBundle)
	r.Get("/v1/spiffe-bundle", s.getSPIFFEBundle)
	r.Get("/v1/crl", s.getCRL)
	r.Get("/v1/crl/{issuer_key_id}", s.getIssuerCRL)
	r.Get("/healthz", s.health)
	r.Get("/readyz", s.ready)
	r.Get("/openapi.yaml", s.openAPI)
	r.Method(http.MethodGet, "/metrics", cfg.Metrics.Handler())
	if cfg.ACME != nil {
		r.Mount("/acme", cfg.ACME)
	}
	return r, nil
}

// EventRequest is logged (rotor.LogEvent) at DEBUG for each request.
// Attributes: method, path, status, duration, remote_addr.
const EventRequest = "http.request"

// EventAbandoned is logged (rotor.LogEvent) at DEBUG when a request fails
// because its client hung up: the caller's doing, not an outage, so it
// is neither an ERROR nor a refusal counted by reason. Attributes: code,
// method, path.
const EventAbandoned = "request.abandoned"

// observe times each request for the metrics and logs it at DEBUG: method,
// path, status and duration, never a header (Authorization holds tokens).
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		d := time.Since(start)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		// The route pattern, not the path, keeps the label set bounded.
		route := chi.RouteContext(r.Context()).RoutePattern()
		s.metrics.observeRequest(route, status, d)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "http request", slog.String(rotor.LogEvent, EventRequest),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.Int("status", status), slog.Duration("duration", d),
				slog.String("remote_addr", r.RemoteAddr))
		}
	})
}

// recoverPanic answers a panicking handler with a generic 500 problem and
// logs the stack, so one bad request cannot take the connection's answer
// with it.
func (s *server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v) // the server's own signal to drop the connection
			}
			err := rotor.WrapError(rotor.EInternal, fmt.Errorf("panic: %v\n%s", v, debug.Stack()), "internal error")
			if ww, ok := w.(middleware.WrapResponseWriter); ok && ww.Status() != 0 {
				s.log.Error("handler panicked after answering", "path", r.URL.Path, "error", err)
				return
			}
			s.problem.write(w, r, err)
		}()
		next.ServeHTTP(w, r)
	})
}

// timeout bounds the request's context. Handlers pass it down (the store
// and signer honour it and answer with their unavailable codes), so no
// response is written behind the handler's back as http.TimeoutHandler would.
func (s *server) timeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
