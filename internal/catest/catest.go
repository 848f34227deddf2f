// Package catest runs a real Rotor CA in-process for tests of code that
// talks to one (the client, the agent, the demo's roles): the core rotor.CA
// with an in-memory key, the real api handler and the real static-token and
// mTLS authenticators, served over real TLS on 127.0.0.1, with a real
// SQLite audit store in a temporary directory. It can also be made to
// answer as if down, so callers can test their retry paths. It lives under
// internal so that the client's import graph holds neither the store nor
// the API.
package catest

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/authn"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/issuer"
	"github.com/rotor-dev/rotor/linkerd"
	"github.com/rotor-dev/rotor/store"
)

// TrustDomain is the trust domain of every test CA.
const TrustDomain = "rotor.test"

// Options shape a test CA.
type Options struct {
	// TTL is the default certificate lifetime; zero means one hour.
	TTL time.Duration
	// MaxTTL caps requested lifetimes; zero means max(TTL, 24h).
	MaxTTL time.Duration
	// ClockSkew backdates NotBefore; zero means 20s, rotor-ca's default,
	// so clients meet certificates whose NotBefore precedes issuance.
	ClockSkew time.Duration
	// StoreURL is the audit store (store.Open); "" means a SQLite file in
	// a temporary directory.
	StoreURL string
	// Linkerd also serves Linkerd's identity API (LinkerdAddr), with the
	// default suffix and audience, its TLS certificate for
	// LinkerdServerName issued from the current issuer as rotor-ca serve
	// does.
	Linkerd bool
}

// Mode is how the test CA answers.
type Mode int32

// Modes of a test CA.
const (
	Up          Mode = iota // serve normally
	Unavailable             // answer every request 503 store-unavailable
	Unreachable             // drop every connection without an answer
)

// CA is a running test CA. Its fields are read-only.
type CA struct {
	URL    string
	Root   *x509.Certificate
	Roots  *x509.CertPool
	Bundle *rotor.Bundle
	// Issuer is the one the CA starts with; SetTrust swaps in others.
	Issuer *rotor.Issuer
	Server *httptest.Server
	// LinkerdAddr and LinkerdServerName are where Linkerd's identity API
	// listens and the name its certificate carries, with Options.Linkerd.
	LinkerdAddr, LinkerdServerName string

	trust *rotor.TrustHolder
	store *store.Store
	audit *recorder
	mode  atomic.Int32
}

// New starts a test CA, stopped when t ends.
func New(t testing.TB, opt Options) *CA {
	t.Helper()
	if opt.TTL == 0 {
		opt.TTL = time.Hour
	}
	if opt.MaxTTL == 0 {
		opt.MaxTTL = max(opt.TTL, 24*time.Hour)
	}
	if opt.ClockSkew == 0 {
		opt.ClockSkew = 20 * time.Second
	}
	ctx := context.Background()
	pki := testpki.New(t, testpki.Options{})
	holder := rotor.NewTrustHolder(pki.Trust)
	if opt.StoreURL == "" {
		opt.StoreURL = "sqlite://" + filepath.Join(t.TempDir(), "rotor.db")
	}
	st, err := store.Open(ctx, opt.StoreURL, store.Options{Migrate: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	audit := &recorder{AuditLog: st}
	ca, err := rotor.NewCA(rotor.CAConfig{
		Policy: rotor.Policy{TrustDomain: TrustDomain, DefaultTTL: opt.TTL, MaxTTL: opt.MaxTTL,
			ClockSkew: opt.ClockSkew},
		Trust: holder,
		Authenticator: rotor.Authenticators{authn.NewMTLS(holder, st, TrustDomain, nil),
			authn.NewStaticTokens(st, nil, nil)},
		Audit:  audit,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{CA: ca, Trust: holder, Certificates: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c := &CA{Root: pki.Root, Roots: pki.Bundle.Pool(), Bundle: pki.Bundle, Issuer: pki.Issuer, trust: holder,
		store: st, audit: audit}
	serving := pki.ServingCert(t)
	ts := httptest.NewUnstartedServer(c.gate(h))
	ts.TLS = api.ServerTLSConfig(nil)
	// httptest ignores GetCertificate when Certificates is empty: it
	// fills in its own.
	ts.TLS.Certificates = []tls.Certificate{serving}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose
	ts.StartTLS()
	t.Cleanup(ts.Close)
	c.Server, c.URL = ts, ts.URL
	if opt.Linkerd {
		c.serveLinkerd(t, ca)
	}
	return c
}

// serveLinkerd serves Linkerd's identity API from ca until the test ends.
func (c *CA) serveLinkerd(t testing.TB, ca *rotor.CA) {
	t.Helper()
	settings := linkerd.Settings{Suffix: rotor.DefaultLinkerdSuffix, ServerIdentity: linkerd.DefaultServerIdentity}
	name, err := settings.ServerName()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := linkerd.New(linkerd.Config{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := &issuer.ServingCert{Names: []string{name}, Trust: c.trust, Lifetime: time.Hour, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- linkerd.Serve(ctx, linkerd.ServeConfig{Listener: ln, Server: srv, GetCertificate: cert.GetCertificate,
			ShutdownTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Linkerd identity API: %v", err)
		}
	})
	c.LinkerdAddr, c.LinkerdServerName = ln.Addr().String(), name
}

// Record reads the audit row of serial back from the store.
func (c *CA) Record(t testing.TB, serial string) *rotor.Issuance {
	t.Helper()
	iss, err := c.store.Issuance(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// StopStore closes the audit store: from then on every lookup and record
// fails with EStoreUnavailable, as when the database is gone.
func (c *CA) StopStore(t testing.TB) {
	t.Helper()
	if err := c.store.Close(); err != nil {
		t.Fatal(err)
	}
}

// Token creates a static token for id.
func (c *CA) Token(t testing.TB, id rotor.Identity) string {
	t.Helper()
	tok, st, err := rotor.NewStaticToken(nil, id, time.Now())
	return c.storeToken(t, tok, st, err)
}

// AdminToken creates an admin token.
func (c *CA) AdminToken(t testing.TB) string {
	t.Helper()
	tok, st, err := rotor.NewAdminToken(nil, "catest-admin", 0, time.Now())
	return c.storeToken(t, tok, st, err)
}

func (c *CA) storeToken(t testing.TB, tok string, st rotor.StaticToken, err error) string {
	t.Helper()
	if err == nil {
		err = c.store.CreateToken(context.Background(), st,
			rotor.AdminAction{Time: st.CreatedAt, Actor: rotor.Actor{Name: "catest", Kind: rotor.ActorCLI}})
	}
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Revoke revokes the certificate serial in the store, as "rotor-ca
// certificate revoke" does.
func (c *CA) Revoke(t testing.TB, serial string) {
	t.Helper()
	now := time.Now()
	a := rotor.AdminAction{Time: now, Actor: rotor.Actor{Name: "catest", Kind: rotor.ActorCLI}, Reason: "keyCompromise"}
	r := rotor.Revocation{Serial: serial, Time: now, Reason: rotor.ReasonKeyCompromise, Actor: "catest", Comment: a.Reason}
	if err := c.store.RevokeCertificate(context.Background(), r, a); err != nil {
		t.Fatal(err)
	}
}

// SetTrust makes the CA sign with iss and serve roots as its bundle from
// the next request on, as rotor-ca serve does when it reloads: the steps
// of a root rotation (docs/root-rotation.md). The TLS serving certificate
// stays the first issuer's.
func (c *CA) SetTrust(t testing.TB, iss *rotor.Issuer, roots ...*x509.Certificate) {
	t.Helper()
	b, err := rotor.NewBundle(roots)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := rotor.NewTrust(iss, b, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.trust.Set(tr)
}

// SetMode makes the CA answer as m from the next request on.
func (c *CA) SetMode(m Mode) { c.mode.Store(int32(m)) }

// Issuances returns every issuance recorded so far, oldest first.
func (c *CA) Issuances() []*rotor.Issuance { return c.audit.issuances() }

// gate applies the mode before the API sees the request.
func (c *CA) gate(h http.Handler) http.Handler {
	down := rotor.Errorf(rotor.EStoreUnavailable, "the test CA is down")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch Mode(c.mode.Load()) {
		case Unavailable:
			w.Header().Set("Content-Type", rotor.MediaProblem)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"type":"` + down.Code.ProblemType() + `","title":"Store unavailable","status":503,"detail":"` + down.Message + `"}`))
		case Unreachable:
			panic(http.ErrAbortHandler) // the server drops the connection unanswered
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// NewKey makes a P-256 key or fails the test.
func NewKey(t testing.TB) crypto.Signer { return testpki.Key(t, string(rotor.ECDSAP256)) }
