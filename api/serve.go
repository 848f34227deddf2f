package api

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rotor-dev/rotor"
)

// Timeouts bound every phase of a connection, so one slow or stalled client
// holds a connection and a goroutine for a bounded time and no longer.
// Zero fields take the defaults shown.
type Timeouts struct {
	// Handshake bounds the TLS handshake, from accept, its wait for a
	// place included; default 10s.
	Handshake time.Duration
	// Header bounds reading the request line and headers; default 5s.
	Header time.Duration
	// Request bounds reading the whole request, body included, however
	// slowly its bytes come; default 15s.
	Request time.Duration
	// Write bounds the handler and writing its answer, from the end of the
	// headers; default 35s, past the handler's own 30s deadline.
	Write time.Duration
	// Idle bounds a kept-alive connection between requests; default 90s.
	Idle time.Duration
	// MaxHeaderBytes caps the request line and headers; default 16 KiB.
	MaxHeaderBytes int
}

func (t Timeouts) withDefaults() Timeouts {
	t.Handshake = cmp.Or(t.Handshake, 10*time.Second)
	t.Header = cmp.Or(t.Header, 5*time.Second)
	t.Request = cmp.Or(t.Request, 15*time.Second)
	t.Write = cmp.Or(t.Write, 35*time.Second)
	t.Idle = cmp.Or(t.Idle, 90*time.Second)
	t.MaxHeaderBytes = cmp.Or(t.MaxHeaderBytes, 16<<10)
	return t
}

// ServeConfig is how the API is served. Listener, Handler and
// GetCertificate are required.
type ServeConfig struct {
	Timeouts Timeouts
	// Listener accepts plain TCP; Serve adds TLS (ServerTLSConfig).
	Listener net.Listener
	Handler  http.Handler
	// GetCertificate supplies the serving certificate, so it can change
	// without a restart.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ShutdownTimeout is how long requests in flight may take to finish
	// once ctx ends; zero means 15s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// ServingAttrs are added to the rotor.EventServing line.
	ServingAttrs []any
}

// Serve serves the API over TLS until ctx ends, then stops accepting and
// lets the requests in flight finish, each with its certificate and audit
// row or with an error, within ShutdownTimeout. It returns nil after a
// clean shutdown.
func Serve(ctx context.Context, cfg ServeConfig) error {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := cfg.Timeouts.withDefaults()
	srv := &http.Server{Handler: cfg.Handler, ReadHeaderTimeout: t.Header, ReadTimeout: t.Request,
		WriteTimeout: t.Write, IdleTimeout: t.Idle, MaxHeaderBytes: t.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	ln := newHandshakeListener(cfg.Listener, ServerTLSConfig(cfg.GetCertificate), t.Handshake, cfg.Logger)
	go func() { errc <- srv.Serve(ln) }()
	cfg.Logger.Info("rotor-ca serving", append([]any{rotor.LogEvent, rotor.EventServing,
		"addr", "https://" + cfg.Listener.Addr().String()}, cfg.ServingAttrs...)...)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	cfg.Logger.Info("shutting down: finishing requests in flight", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
