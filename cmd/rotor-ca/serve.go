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
	"path/filepath"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/signer"
	"github.com/rotor-dev/rotor/store"
)

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
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
		if err := pki.ensure(ctx); err != nil {
			return fmt.Errorf("development PKI in %s: %w", cfg.DataDir, err)
		}
		cfg.IssuerCert, cfg.IssuerKey = pki.path(issuerCertFile), pki.path(issuerKeyFile)
		cfg.TrustBundle = pki.path(rootCertFile)
		log.Warn("running on development defaults: file keys and a SQLite audit store; not for production",
			"data_dir", cfg.DataDir, "store", cfg.StoreURL, "trust_bundle", cfg.TrustBundle)
	}
	if err := cfg.prepareStoreDir(); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.StoreURL, store.Options{Logger: log, Migrate: true})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()

	metrics := api.NewMetrics()
	signerCfg, err := cfg.signerConfig(log)
	if err != nil {
		return err
	}
	backend, err := signer.Open(ctx, signerCfg)
	if err != nil {
		return fmt.Errorf("open issuing key: %w", err)
	}
	// The monitor wraps the metrics so that backend latency is measured and
	// /readyz goes through the monitor's health tracking.
	key := signer.NewMonitored(metrics.Signer(backend), signer.MonitorConfig{SignTimeout: cfg.SignTimeout, Logger: log})
	defer key.Close()
	trust, err := loadTrust(cfg.IssuerCert, cfg.TrustBundle, key)
	if err != nil {
		return err
	}
	holder := rotor.NewTrustHolder(trust)
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

// loadTrust reads the issuer chain and the trust bundle and checks that they
// fit together and with the key.
func loadTrust(issuerCertFile, bundleFile string, key rotor.Signer) (*rotor.Trust, error) {
	chainPEM, err := os.ReadFile(issuerCertFile)
	if err != nil {
		return nil, fmt.Errorf("read issuer certificate: %w", err)
	}
	chain, err := rotor.ParseCertificates(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("issuer certificate %s: %w", issuerCertFile, err)
	}
	if err := signer.CheckCertificate(key, chain[0]); err != nil {
		return nil, err
	}
	issuer, err := rotor.NewIssuer(chain[0], chain[1:], key)
	if err != nil {
		return nil, err
	}
	bundlePEM, err := os.ReadFile(bundleFile)
	if err != nil {
		return nil, fmt.Errorf("read trust bundle: %w", err)
	}
	roots, err := rotor.ParseCertificates(bundlePEM)
	if err != nil {
		return nil, fmt.Errorf("trust bundle %s: %w", filepath.Clean(bundleFile), err)
	}
	bundle, err := rotor.NewBundle(roots)
	if err != nil {
		return nil, err
	}
	return rotor.NewTrust(issuer, bundle, time.Now())
}
