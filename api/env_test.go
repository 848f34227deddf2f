package api_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/acme"
	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/authn"
	"github.com/rotor-dev/rotor/checkpoint"
	"github.com/rotor-dev/rotor/crl"
	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/signer"
	"github.com/rotor-dev/rotor/store"
)

const trustDomain = "cluster.local"

var webapp = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}

// serverCertificate makes the HTTPS server's own certificate, from a root
// unrelated to the CA's, and the pool that trusts it.
func serverCertificate(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key := testpki.Key(t, "ecdsa-p256")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca.rotor.test"},
		DNSNames: []string{"ca.rotor.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// openStore opens a real store with its migrations applied; reg, if set,
// gets its metrics.
func openStore(t testing.TB, url string, reg prometheus.Registerer) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url, store.Options{Migrate: true, Logger: slog.New(slog.DiscardHandler),
		Registerer: reg})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// sqliteURL is a fresh SQLite database file for one test.
func sqliteURL(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "rotor.db")
}

// backends names each real store a test runs against, and how to get a
// fresh URL for it. Postgres skips (or fails in CI) when it is not there.
var backends = []struct {
	name string
	url  func(testing.TB) string
}{
	{"sqlite", sqliteURL},
	{"postgres", testenv.PostgresURL},
}

// env is a whole CA over TLS: a real store, the real authenticators
// (mTLS, then static tokens), the core CA, the API and its metrics.
type env struct {
	*tlsServer
	store   *store.Store
	pki     *testpki.PKI
	trust   *rotor.TrustHolder // starts with pki.Trust
	ca      *rotor.CA
	metrics *api.Metrics
	token   string // a static token for webapp
	admin   string // an admin token
	deny    *rotor.Denylist
}

type envConfig struct {
	// tokenFresh is authn.ChainConfig.Fresh; zero reads tokens from the
	// store on every request, so tests see a revocation at once.
	tokenFresh  time.Duration
	maxTTL      time.Duration
	limiter     *rotor.Limiter
	rand        io.Reader                   // the CA's randomness; nil: crypto/rand
	signTimeout time.Duration               // the signer monitor's; zero: its default
	wrapKey     func(signer.Key) signer.Key // around the issuing key, inside the metrics; nil: none
	readyTO     time.Duration
	logs        io.Writer // receives every log line at DEBUG; nil: discarded
	// jwt, if set, adds a service-account JWT authenticator trusting it.
	jwt *testpki.ServiceAccountIssuer
	// The CA's limits (rotor.CAConfig); zero values: off.
	sourceLimiter *rotor.Limiter
	maxInFlight   int
	budget        rotor.RefusalBudget
	// serve, if set, serves the API with api.Serve (real timeouts) on a
	// listener of its own instead of httptest.
	serve *api.Timeouts
	// ready gives the /readyz checks once the store and PKI exist; nil, or
	// a nil result, means the store and signer checks.
	ready func(e *env) []api.ReadyCheck
	// denyRefresh is how often the deny list is re-read; zero: 100ms.
	denyRefresh time.Duration
	// crlURL is the policy's CRLURL, the base of leaves' CRL
	// distribution point; "": none.
	crlURL string
	// acme mounts the ACME handler at /acme.
	acme bool
}

func newEnv(t testing.TB, storeURL string, cfg envConfig) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	e := &env{store: openStore(t, storeURL, reg), metrics: api.NewMetrics(reg)}
	signerMetrics := signer.NewMetrics(reg)
	var monitor *signer.Monitored
	e.pki = testpki.New(t, testpki.Options{Name: "Rotor Test", Signer: func(k crypto.Signer) rotor.Signer {
		key := signer.LocalKey(k)
		if cfg.wrapKey != nil {
			key = cfg.wrapKey(key)
		}
		monitor = signer.NewMonitored(signerMetrics.Instrument(key), signer.MonitorConfig{SignTimeout: cfg.signTimeout})
		t.Cleanup(func() { monitor.Close() })
		return monitor
	}})
	e.token = e.newToken(t, webapp)
	e.admin = e.newAdminToken(t, "test-admin")
	e.deny = &rotor.Denylist{}
	if cfg.denyRefresh == 0 {
		cfg.denyRefresh = 100 * time.Millisecond
	}
	go e.deny.Run(t.Context(), e.store, cfg.denyRefresh, slog.New(slog.DiscardHandler))
	e.trust = rotor.NewTrustHolder(e.pki.Trust)
	trust := e.trust
	if cfg.maxTTL == 0 {
		cfg.maxTTL = 72 * time.Hour
	}
	logger := slog.New(slog.DiscardHandler)
	if cfg.logs != nil {
		logger = slog.New(slog.NewJSONHandler(cfg.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cc := authn.ChainConfig{MTLS: true, Trust: trust, Records: e.store, TrustDomain: trustDomain, Tokens: e.store,
		Logger: logger, Fresh: cfg.tokenFresh}
	if cfg.jwt != nil {
		cc.JWT = &authn.JWTConfig{JWKSFile: cfg.jwt.JWKSFile, Issuer: cfg.jwt.Issuer}
	}
	chain, _, err := authn.NewChain(cc)
	if err != nil {
		t.Fatal(err)
	}
	e.ca, err = rotor.NewCA(rotor.CAConfig{
		Policy: rotor.Policy{TrustDomain: trustDomain, DefaultTTL: 24 * time.Hour, MaxTTL: cfg.maxTTL,
			ClockSkew: time.Minute, CRLURL: cfg.crlURL},
		Trust:         trust,
		Authenticator: chain,
		Audit:         e.store,
		Limiter:       cfg.limiter,
		SourceLimiter: cfg.sourceLimiter,
		MaxInFlight:   cfg.maxInFlight,
		RefusalBudget: cfg.budget,
		Denylist:      e.deny,
		Admin:         e.store,
		Rand:          cfg.rand,
		Logger:        logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ca.Close)
	var ready []api.ReadyCheck
	if cfg.ready != nil {
		ready = cfg.ready(e)
	}
	if ready == nil {
		ready = []api.ReadyCheck{api.StoreReady(e.store),
			{Name: "signer", Code: rotor.ESignerUnavailable, Check: monitor.Check}}
	}
	crls, err := crl.New(crl.Config{Store: e.store, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	var acmeHandler http.Handler
	if cfg.acme {
		if acmeHandler, err = acme.New(acme.Config{ACME: rotor.ACME{CA: e.ca, Store: e.store}, Trust: trust, Logger: logger}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := api.New(api.Config{CA: e.ca, Trust: trust, Certificates: e.store, CRLs: crls, Ready: ready,
		Metrics: e.metrics, Logger: logger, ReadyTimeout: cfg.readyTO, Checkpoints: newCheckpointer(t, e.store),
		ACME: acmeHandler})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.serve != nil {
		e.tlsServer = serveTLS(t, h, *cfg.serve)
	} else {
		e.tlsServer = startTLS(t, h)
	}
	return e
}

// newToken creates a static token for id in the env's store.
func (e *env) newToken(t testing.TB, id rotor.Identity) string {
	t.Helper()
	tok, rec, err := rotor.NewStaticToken(nil, id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateToken(context.Background(), rec, testAction); err != nil {
		t.Fatalf("create token: %v", err)
	}
	return tok
}

// newCheckpointer signs checkpoints of st with a fresh key.
func newCheckpointer(t testing.TB, st *store.Store) *checkpoint.Checkpointer {
	t.Helper()
	dir := t.TempDir()
	if _, err := checkpoint.NewKey(dir, "rotor-audit-test"); err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.LoadSigner(filepath.Join(dir, checkpoint.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return &checkpoint.Checkpointer{Store: st, Signer: s, Log: slog.New(slog.DiscardHandler)}
}

// newAdminToken creates an admin token named name.
func (e *env) newAdminToken(t testing.TB, name string) string {
	t.Helper()
	tok, rec, err := rotor.NewAdminToken(nil, name, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateToken(context.Background(), rec, testAction); err != nil {
		t.Fatalf("create admin token: %v", err)
	}
	return tok
}

// bearer is the Authorization header for token.
func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// testAction is the admin action tests create tokens with.
var testAction = rotor.AdminAction{Time: time.Now(), Actor: rotor.Actor{Name: "cli:test", Kind: rotor.ActorCLI}}
