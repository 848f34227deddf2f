package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/signer"
	"github.com/rotor-dev/rotor/store"
)

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	// SIGHUP reloads the issuer; registered first, so that one arriving
	// during start-up is queued rather than killing the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var cfg serveConfig
	fs := newFlagSet("serve", stderr)
	cfg.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := cfg.logger(stderr)
	if err != nil {
		return err
	}
	if cfg.devDefaults() {
		pki := devPKI{Dir: cfg.DataDir, TrustDomain: cfg.TrustDomain, RootLifetime: cfg.RootLifetime,
			IssuerLifetime: cfg.IssuerLifetime, Log: log}
		if cfg.issuerSettings, cfg.TrustBundle, err = pki.ensure(ctx); err != nil {
			return fmt.Errorf("development PKI in %s: %w", cfg.DataDir, err)
		}
		log.Warn("running on development defaults: file keys and a SQLite audit store; not for production",
			"data_dir", cfg.DataDir, "store", cfg.StoreURL, "trust_bundle", cfg.TrustBundle)
	}
	metrics := api.NewMetrics()
	loader := &trustLoader{base: cfg.issuerSettings, configFile: cfg.IssuerConfig, bundleFile: cfg.TrustBundle,
		monitor: signer.MonitorConfig{SignTimeout: cfg.SignTimeout, Logger: log}, metrics: metrics, log: log}
	if _, err := loader.settings(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := cfg.prepareStoreDir(); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.StoreURL, store.Options{Logger: log, Migrate: true})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()

	digest := loader.digest()
	cur, err := loader.load(ctx, nil)
	if err != nil {
		return fmt.Errorf("load the issuer: %w", err)
	}
	bundles, _ := st.(store.BundleRecorder)
	reload := newReloader(loader, cur, digest, bundles, metrics.Registry(), log)
	trust, holder := cur.trust, reload.holder
	reloadCtx, stopReload := context.WithCancel(ctx)
	reloadDone := make(chan struct{})
	go func() {
		defer close(reloadDone)
		reload.run(reloadCtx, hup, cfg.ReloadInterval)
	}()
	// The signers close last, once no request can be using them.
	defer func() {
		stopReload()
		<-reloadDone
		reload.closeAll()
	}()
	auth, err := buildAuthenticators(ctx, &cfg, st, holder, log)
	if err != nil {
		return err
	}
	var limiter *rotor.Limiter
	if cfg.RateLimit > 0 {
		limiter = &rotor.Limiter{Rate: cfg.RateLimit, Burst: cfg.RateBurst}
	}
	ca, err := rotor.NewCA(rotor.CAConfig{Policy: cfg.policy(), Trust: holder, Authenticator: auth,
		Audit: metrics.AuditLog(st), Limiter: limiter, SignTimeout: cfg.SignTimeout, Logger: log})
	if err != nil {
		return err
	}
	handler, err := api.New(api.Config{CA: ca, Trust: holder, Finder: st, Metrics: metrics, Logger: log,
		TrustDomain: cfg.TrustDomain, Ready: []api.ReadyCheck{
			api.StoreReady(st),
			{Name: "signer", Code: rotor.ESignerUnavailable, Check: func(ctx context.Context) error {
				return signer.Check(ctx, holder.Trust().Issuer.Signer)
			}},
		}})
	if err != nil {
		return err
	}

	getCert := (&servingCert{Names: cfg.tlsNames(), Trust: holder, Lifetime: 30 * 24 * time.Hour, Log: log}).GetCertificate
	if cfg.TLSCert != "" {
		if getCert, err = fileServingCert(cfg.TLSCert, cfg.TLSKey); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, api.ServerTLSConfig(getCert))) }()
	log.Info("rotor-ca serving", "addr", "https://"+ln.Addr().String(), "trust_domain", cfg.TrustDomain,
		"cert_ttl", cfg.CertTTL, "issuer_key_id", trust.Issuer.KeyID, "bundle_fingerprint", trust.Bundle.Fingerprint)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
