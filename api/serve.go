package api

import (
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

// ServeConfig is how the API is served. Listener, Handler and
// GetCertificate are required.
type ServeConfig struct {
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
	srv := &http.Server{Handler: cfg.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(cfg.Listener, ServerTLSConfig(cfg.GetCertificate))) }()
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
