package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/acme"
	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/authn"
	"github.com/rotor-dev/rotor/checkpoint"
	"github.com/rotor-dev/rotor/crl"
	"github.com/rotor-dev/rotor/internal/buildinfo"
	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/internal/storecmd"
	"github.com/rotor-dev/rotor/issuer"
	"github.com/rotor-dev/rotor/linkerd"
	"github.com/rotor-dev/rotor/signer"
	"github.com/rotor-dev/rotor/store"
)

// serveConfig is everything "rotor-ca serve" is told.
type serveConfig struct {
	storecmd.Flags
	Listen, TLSCert, TLSKey, TLSNames string

	Policy                 rotor.Policy
	SignTimeout            time.Duration
	RateLimit, SourceRate  float64
	RateBurst, SourceBurst int
	MaxInFlight            int
	RenewalPacing          bool
	Refusals               rotor.RefusalBudget
	DenyRefresh            time.Duration
	CheckpointKey          string
	CheckpointEvery        time.Duration
	RenewalRetryAfter      time.Duration
	CRLValidity            time.Duration
	ACME                   bool

	Issuer                    issuer.Settings
	IssuerConfig, TrustBundle string
	ReloadInterval            time.Duration
	RootLifetime, IssuerLife  time.Duration
	Authn                     authn.Settings
	Linkerd                   linkerd.Settings

	HandshakeTimeout, ShutdownTimeout time.Duration
}

func (c *serveConfig) register(f *cli.FlagSet) {
	c.Flags.Register(f, "directory for the development CA's keys, certificates and SQLite database", true)
	f.StringVar(&c.Listen, "listen", "127.0.0.1:8443", "HTTPS listen address; port 0 picks a free one (the event=ca.serving log line gives it)")
	f.StringVar(&c.TLSCert, "tls-cert", "", "serving certificate chain PEM (default: issue one from the CA's own issuer)")
	f.StringVar(&c.TLSKey, "tls-key", "", "serving certificate key PEM (with --tls-cert)")
	f.StringVar(&c.TLSNames, "tls-names", "localhost,127.0.0.1", "comma-separated DNS names and IPs of the self-issued serving certificate")
	f.StringVar(&c.Policy.TrustDomain, "trust-domain", "cluster.local", "trust domain: ends DNS identities and is the SPIFFE ID's host")
	f.DurationVar(&c.Policy.DefaultTTL, "cert-ttl", 24*time.Hour, "lifetime of issued certificates")
	f.Alias("identity-issuance-lifetime", "cert-ttl", "Linkerd's name")
	f.Alias("identity-issuer-interval", "cert-ttl", "Linkerd's name")
	f.DurationVar(&c.Policy.MaxTTL, "max-cert-ttl", 0, "longest lifetime a request may ask for (default: the larger of --cert-ttl and 24h)")
	f.DurationVar(&c.Policy.ClockSkew, "clock-skew", 20*time.Second, "NotBefore is backdated by this much for peers with slow clocks")
	f.DurationVar(&c.SignTimeout, "sign-timeout", 5*time.Second, "deadline for one signature by the issuing key")
	f.Float64Var(&c.RateLimit, "rate-limit", 0, "issuances per second allowed per identity, 0 for no limit")
	f.IntVar(&c.RateBurst, "rate-burst", 20, "burst allowed per identity above --rate-limit")
	f.Float64Var(&c.SourceRate, "source-rate-limit", 1, "failed authentications per second allowed per remote host; past them it is answered 429 before any authenticator runs; 0 for no limit")
	f.IntVar(&c.SourceBurst, "source-rate-burst", 20, "burst of failed authentications allowed per remote host above --source-rate-limit")
	f.IntVar(&c.MaxInFlight, "max-in-flight", 0, "issuances checked, signed and committed at once; beyond, 503 with Retry-After at once (default: 8 per signature the signer makes at once, at least 64)")
	f.BoolVar(&c.RenewalPacing, "renewal-pacing", true, "place each certificate's renew_after where this CA's schedule of renewals is emptiest, between a sixth and two thirds of its lifetime, so a fleet issued together does not renew together; false: at two thirds for all")
	f.IntVar(&c.Refusals.Rows, "refusal-budget", rotor.DefaultRefusalBudget.Rows, "refusal rows per unauthenticated remote host and --refusal-interval; past it one summary row per interval; 0 for no bound")
	f.DurationVar(&c.Refusals.Interval, "refusal-interval", rotor.DefaultRefusalBudget.Interval, "interval of --refusal-budget")
	f.DurationVar(&c.DenyRefresh, "deny-list-refresh", time.Second, "how often the deny list is re-read from the store, and how long a token lookup is trusted: an identity denied or a token revoked on another replica is refused here within this")
	f.StringVar(&c.CheckpointKey, "checkpoint-key", "", "signer key of the audit checkpoints (default: <data-dir>/audit-checkpoint.key if it exists; development mode makes one)")
	f.DurationVar(&c.CheckpointEvery, "checkpoint-interval", time.Minute, "how often the audit chain's head is signed when it has grown; 0: only on POST /v1/audit/checkpoint")
	f.DurationVar(&c.RenewalRetryAfter, "renewal-info-retry-after", rotor.DefaultRenewalRetryAfter, "Retry-After of GET /v1/renewal-info: how long holders wait before asking again (less when the window opens sooner); at least 30s")
	f.StringVar(&c.Policy.CRLURL, "crl-url", "", "base URL of the CRLs, e.g. https://ca.example.com/v1/crl: each leaf names <base>/<issuer key ID> as its CRL distribution point (default: none)")
	f.DurationVar(&c.CRLValidity, "crl-validity", rotor.DefaultCRLValidity, "how long each CRL served at /v1/crl is valid (nextUpdate); a new one is signed every half of it, and within a second of a revocation; the same on every replica")
	f.BoolVar(&c.ACME, "acme", true, "serve ACME (RFC 8555) with External Account Binding under /acme/ (directory: /acme/directory); accounts need a key from rotor-ca acme eab create")
	c.Issuer.RegisterFlags(f.FlagSet, true)
	f.StringVar(&c.IssuerConfig, "issuer-config", "", "file of issuer settings (issuer-cert=…, signer=…: the names of these flags), as rotor-ca init writes it; re-read on SIGHUP and when it changes (default: <data-dir>/issuer.conf, when it exists and no issuer flag is given)")
	f.StringVar(&c.TrustBundle, "trust-bundle", "", "PEM file of the root certificates served at /v1/bundle; may hold several during a root rotation; re-read on SIGHUP and when it changes (default: <data-dir>/bundle.pem)")
	f.DurationVar(&c.ReloadInterval, "reload-interval", 5*time.Second, "how often to check the issuer and bundle files for changes; 0: only on SIGHUP")
	f.DurationVar(&c.RootLifetime, "root-lifetime", 10*365*24*time.Hour, "lifetime of a created development root CA")
	f.DurationVar(&c.IssuerLife, "issuer-lifetime", 365*24*time.Hour, "lifetime of a created development issuing CA")
	c.Authn.RegisterFlags(f.FlagSet)
	c.Linkerd.RegisterFlags(f.FlagSet)
	f.DurationVar(&c.HandshakeTimeout, "handshake-timeout", 10*time.Second, "how long the TLS handshake of a connection to --listen may take from accept, its wait for a place among the handshakes being computed included (--linkerd-listen has its own 10s)")
	f.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long requests in flight may take to finish on SIGTERM")
}

// Validate fills derived defaults and checks the configuration as a whole.
func (c *serveConfig) Validate() error {
	if c.Policy.MaxTTL == 0 {
		c.Policy.MaxTTL = max(c.Policy.DefaultTTL, 24*time.Hour)
	}
	c.Policy.LinkerdSuffix = c.Linkerd.Suffix
	if err := c.Policy.Validate(); err != nil {
		return cli.Usagef("%s", rotor.ErrorMessageOf(err))
	}
	dev := c.devDefaults()
	if !dev && c.TrustBundle == "" {
		c.TrustBundle = filepath.Join(c.DataDir, issuer.BundleFile)
	}
	checks := []struct {
		bad bool
		msg string
	}{
		{badAddr(c.Listen), "--listen " + c.Listen + " is not host:port"},
		{(c.TLSCert == "") != (c.TLSKey == ""), "--tls-cert and --tls-key go together"},
		{c.TLSCert == "" && len(c.tlsNames()) == 0, "--tls-names is empty"},
		{dev && c.Issuer.Signer != signer.BackendFile, "--signer " + c.Issuer.Signer + " needs --issuer-cert (or --issuer-config) and --trust-bundle; `rotor-ca init --signer " + c.Issuer.Signer + "` makes them"},
		{dev && c.Issuer.IssuerKey != "", "--issuer-key goes with --issuer-cert"},
		{c.ReloadInterval < 0, "--reload-interval must not be negative"},
		{c.RateLimit < 0 || c.RateBurst < 1 || c.SourceRate < 0 || c.SourceBurst < 1, "rate limits must be >= 0 and bursts >= 1"},
		{c.MaxInFlight < 0 || c.Refusals.Rows < 0 || c.Refusals.Interval <= 0, "--max-in-flight and --refusal-budget must be >= 0 and --refusal-interval positive"},
		{c.SignTimeout <= 0 || c.HandshakeTimeout <= 0 || c.ShutdownTimeout <= 0 || c.DenyRefresh <= 0,
			"--sign-timeout, --handshake-timeout, --shutdown-timeout and --deny-list-refresh must be positive"},
		{c.CheckpointEvery < 0, "--checkpoint-interval must not be negative"},
		{c.RenewalRetryAfter < rotor.MinRenewalRetryAfter, "--renewal-info-retry-after must be at least " + rotor.MinRenewalRetryAfter.String() + ": holders are told to wait this long between polls"},
		{c.CRLValidity < rotor.MinCRLValidity, "--crl-validity must be at least " + rotor.MinCRLValidity.String()},
	}
	for _, ch := range checks {
		if ch.bad {
			return cli.Usagef("%s", ch.msg)
		}
	}
	if err := c.Authn.Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	if err := c.Linkerd.Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	return nil
}

func badAddr(a string) bool { _, _, err := net.SplitHostPort(a); return err != nil }

// devDefaults reports whether serve runs on the embedded development PKI.
func (c *serveConfig) devDefaults() bool { return c.Issuer.IssuerCert == "" && c.IssuerConfig == "" }

func (c *serveConfig) tlsNames() []string {
	return strings.FieldsFunc(c.TLSNames, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// servingGCPercent is serve's GOGC unless the environment sets one.
const servingGCPercent = 200

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	// SIGHUP reloads the issuer; registered first, so that one arriving
	// during start-up is queued rather than killing the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if _, set := os.LookupEnv("GOGC"); !set {
		// Issuing allocates over 20 KB per certificate (22 KB in
		// BenchmarkIssueInProcess, before HTTP); at Go's default of 100
		// the collector took 7% of the CPU under load. 200 cut CPU per
		// certificate by about that for 6 MB more resident memory.
		debug.SetGCPercent(servingGCPercent)
	}
	var cfg serveConfig
	f := storecmd.NewFlagSet("serve", stderr)
	cfg.register(f)
	if err := cfg.Parse(f, args, stderr); err != nil {
		return err
	}
	if err := cfg.fromInit(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.devDefaults() {
		if err := cfg.developmentPKI(ctx); err != nil {
			return err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildinfo.Read().Collector())
	loader, err := cfg.loader(f, reg)
	if err != nil {
		return err
	}
	st, err := cfg.OpenStore(ctx, store.Options{Migrate: true, Registerer: reg})
	if err != nil {
		return err
	}
	defer st.Close()
	trust, err := issuer.NewReloader(ctx, issuer.ReloaderConfig{Loader: loader, Bundles: st,
		Interval: cfg.ReloadInterval, Registerer: reg})
	if err != nil {
		return settingsErr(fmt.Errorf("load the issuer: %w", err))
	}
	reloadCtx, stopReload := context.WithCancel(ctx)
	reloadDone := make(chan struct{})
	go func() { defer close(reloadDone); trust.Run(reloadCtx, hup) }()
	// The signers close last, once no request can be using them.
	defer func() { stopReload(); <-reloadDone; trust.Close() }()
	deny, cps, stopBackground, err := cfg.background(reloadCtx, st)
	if err != nil {
		return err
	}
	defer func() { stopReload(); stopBackground() }()
	ca, handler, err := cfg.handler(st, trust, deny, cps, reg)
	if err != nil {
		return err
	}
	defer ca.Close() // pending refusal summaries, before the store closes
	if cfg.Linkerd.Listen == "" {
		return cfg.serveHTTPS(ctx, handler, trust)
	}
	return cfg.serveWithLinkerd(ctx, ca, handler, trust)
}

// fromInit points serve, given no issuer settings, at the CA that
// `rotor-ca init` (or an earlier development start) made in the data
// directory, so its issuer.conf is re-read on SIGHUP like any other. A
// file key is fine for development only: that is a warning.
func (c *serveConfig) fromInit() error {
	if !c.devDefaults() {
		return nil
	}
	conf, bundle, backend, ok, err := issuer.FromInit(c.DataDir)
	if err != nil || !ok {
		return settingsErr(err)
	}
	c.IssuerConfig = conf
	if c.TrustBundle == "" {
		c.TrustBundle = bundle
	}
	level := slog.LevelInfo
	if backend == signer.BackendFile {
		level = slog.LevelWarn
	}
	c.Log.Log(context.Background(), level, "serving the CA in the data directory: "+backend+" issuing key",
		"issuer_config", conf, "trust_bundle", c.TrustBundle)
	return nil
}

// developmentPKI makes or finds the development CA in the data directory
// and serves it.
func (c *serveConfig) developmentPKI(ctx context.Context) error {
	dev := issuer.Development{Dir: c.DataDir, TrustDomain: c.Policy.TrustDomain, RootLifetime: c.RootLifetime,
		IssuerLifetime: c.IssuerLife, Log: c.Log}
	var err error
	if c.Issuer, c.TrustBundle, err = dev.Ensure(ctx); err != nil {
		return fmt.Errorf("development PKI in %s: %w", c.DataDir, err)
	}
	c.Log.Warn("running on development defaults: file keys and a SQLite audit store; not for production",
		"data_dir", c.DataDir, "store", c.StoreURL, "trust_bundle", c.TrustBundle)
	return checkpoint.EnsureKey(c.DataDir, c.Policy.TrustDomain, c.Log)
}

// background reads the deny list and starts refreshing it, and starts
// signing checkpoints, until ctx ends; the function returned waits for
// both to stop.
func (c *serveConfig) background(ctx context.Context, st *store.Store) (*rotor.Denylist, *checkpoint.Checkpointer, func(), error) {
	deny := &rotor.Denylist{}
	if err := deny.Refresh(ctx, st); err != nil {
		return nil, nil, nil, fmt.Errorf("read the deny list: %w", err)
	}
	cps, cpsDone, err := c.checkpoints(ctx, st)
	if err != nil {
		return nil, nil, nil, err
	}
	denyDone := make(chan struct{})
	go func() { defer close(denyDone); deny.Run(ctx, st, c.DenyRefresh, c.Log) }()
	return deny, cps, func() { <-denyDone; cpsDone() }, nil
}

// checkpoints starts signing audit checkpoints, if there is a key, until
// ctx ends.
func (c *serveConfig) checkpoints(ctx context.Context, st *store.Store) (*checkpoint.Checkpointer, func(), error) {
	signer, err := checkpoint.DataDirSigner(c.CheckpointKey, c.DataDir)
	if err != nil || signer == nil {
		if err == nil {
			c.Log.Warn("no audit checkpoint key: the chain is kept but its head is not signed",
				"want", filepath.Join(c.DataDir, checkpoint.KeyFile))
		}
		return nil, func() {}, err
	}
	cp := &checkpoint.Checkpointer{Store: st, Signer: signer, Log: c.Log}
	if c.CheckpointEvery == 0 {
		return cp, func() {}, nil
	}
	done := make(chan struct{})
	go func() { defer close(done); cp.Run(ctx, c.CheckpointEvery) }()
	return cp, func() { <-done }, nil
}

// loader is what loads the issuer and bundle, checked before anything is
// opened.
func (c *serveConfig) loader(f *cli.FlagSet, reg *prometheus.Registry) (*issuer.Loader, error) {
	loader := &issuer.Loader{Base: c.Issuer, Given: f.Given, ConfigFile: c.IssuerConfig, BundleFile: c.TrustBundle,
		PIN: os.Getenv(pinEnv), Monitor: signer.MonitorConfig{SignTimeout: c.SignTimeout, Logger: c.Log},
		Metrics: signer.NewMetrics(reg), Log: c.Log}
	s, err := loader.Settings()
	if err != nil {
		return nil, settingsErr(err)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = max(64, 8*signer.Config{Backend: s.Signer}.Parallelism())
	}
	return loader, nil
}

// handler wires the core CA and the HTTP API.
func (c *serveConfig) handler(st *store.Store, trust *issuer.Reloader, deny *rotor.Denylist, cps *checkpoint.Checkpointer,
	reg *prometheus.Registry) (*rotor.CA, http.Handler, error) {
	log := c.Log
	c.Authn.Fresh = c.DenyRefresh
	chain, names, err := c.Authn.Chain(st, trust, c.Policy.TrustDomain, log)
	if err != nil {
		return nil, nil, cli.Usagef("%v", err)
	}
	log.Info("authenticators", "order", names)
	cfg := rotor.CAConfig{Policy: c.Policy, Trust: trust, Authenticator: chain, Audit: st, Logger: log,
		MaxInFlight: c.MaxInFlight, UnpacedRenewals: !c.RenewalPacing, RefusalBudget: c.Refusals, Denylist: deny, Admin: st}
	if c.RateLimit > 0 {
		cfg.Limiter = &rotor.Limiter{Rate: c.RateLimit, Burst: c.RateBurst}
	}
	if c.SourceRate > 0 {
		cfg.SourceLimiter = &rotor.Limiter{Rate: c.SourceRate, Burst: c.SourceBurst}
	}
	ca, err := rotor.NewCA(cfg)
	if err != nil {
		return nil, nil, err
	}
	crls, err := crl.New(crl.Config{Store: st, Validity: c.CRLValidity, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	apiCfg := api.Config{CA: ca, Trust: trust, Certificates: st, CRLs: crls, Metrics: api.NewMetrics(reg), Logger: log,
		RenewalInfoRetryAfter: c.RenewalRetryAfter,
		Ready: []api.ReadyCheck{api.StoreReady(st),
			{Name: "signer", Code: rotor.ESignerUnavailable, Check: trust.CheckSigner}}}
	if cps != nil {
		apiCfg.Checkpoints = cps
	}
	if c.ACME {
		if apiCfg.ACME, err = acme.New(acme.Config{ACME: rotor.ACME{CA: ca, Store: st}, Trust: trust, Logger: log,
			RenewalInfoRetryAfter: c.RenewalRetryAfter}); err != nil {
			return nil, nil, err
		}
	}
	h, err := api.New(apiCfg)
	return ca, h, err
}

// serveWithLinkerd serves Linkerd's identity API beside HTTPS until ctx
// ends; either failing stops both.
func (c *serveConfig) serveWithLinkerd(ctx context.Context, ca *rotor.CA, handler http.Handler, trust rotor.TrustSource) error {
	srv, err := linkerd.New(linkerd.Config{CA: ca, Audience: c.Linkerd.Audience})
	if err != nil {
		return err
	}
	name, err := c.Linkerd.ServerName()
	if err != nil {
		return cli.Usagef("%v", err)
	}
	ln, err := net.Listen("tcp", c.Linkerd.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Linkerd.Listen, err)
	}
	cert := &issuer.ServingCert{Names: []string{name}, Trust: trust, Lifetime: 30 * 24 * time.Hour, Log: c.Log}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- linkerd.Serve(ctx, linkerd.ServeConfig{Listener: ln, Server: srv, GetCertificate: cert.GetCertificate,
			ShutdownTimeout: c.ShutdownTimeout, Logger: c.Log, ServingAttrs: []any{"server_name", name}})
		cancel()
	}()
	err = c.serveHTTPS(ctx, handler, trust)
	cancel()
	return errors.Join(err, <-done)
}

// serveHTTPS serves handler until ctx ends, then drains requests in flight.
func (c *serveConfig) serveHTTPS(ctx context.Context, handler http.Handler, trust rotor.TrustSource) error {
	log := c.Log
	getCert := (&issuer.ServingCert{Names: c.tlsNames(), Trust: trust, Lifetime: 30 * 24 * time.Hour, Log: log}).GetCertificate
	if c.TLSCert != "" {
		var err error
		if getCert, err = issuer.FileServingCert(c.TLSCert, c.TLSKey); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	t := trust.Trust()
	return api.Serve(ctx, api.ServeConfig{Listener: ln, Handler: handler, GetCertificate: getCert,
		Timeouts: api.Timeouts{Handshake: c.HandshakeTimeout}, ShutdownTimeout: c.ShutdownTimeout, Logger: log, ServingAttrs: []any{"trust_domain", c.Policy.TrustDomain,
			"cert_ttl", c.Policy.DefaultTTL, "issuer_key_id", t.Issuer.KeyID, "bundle_fingerprint", t.Bundle.Fingerprint}})
}
