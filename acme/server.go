// Package acme serves ACME (RFC 8555) with External Account Binding and
// renewal information (RFC 9773) under /acme/ on the CA's listener, so
// certbot, lego, cert-manager and other ACME clients get Rotor workload
// certificates with no Rotor code on their side. It is an adapter: it
// speaks JOSE and HTTP and asks rotor.ACME what is allowed; every
// certificate is the same audited issuance as POST /v1/certificates.
package acme

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rotor-dev/rotor/internal/httpjson"

	"github.com/go-chi/chi/v5"

	"github.com/rotor-dev/rotor"
)

// Prefix is where the handler is mounted: every URL it hands out starts
// with https://<host>/acme.
const Prefix = "/acme"

// Config wires the ACME handler. ACME (its CA and Store) and Trust are
// required.
type Config struct {
	ACME  rotor.ACME
	Trust rotor.TrustSource
	// Logger gets refusals at DEBUG and failures at ERROR; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NonceLifetime is how long a Replay-Nonce is accepted; zero means
	// an hour.
	NonceLifetime time.Duration
	// RenewalInfoRetryAfter is renewalInfo's Retry-After, as
	// rotor.SuggestRenewal takes it; zero means its default.
	RenewalInfoRetryAfter time.Duration
	// MaxBody caps request bodies; zero means 64 KiB.
	MaxBody int64
}

type server struct {
	cfg   Config
	acme  rotor.ACME
	store rotor.ACMEStore
	log   *slog.Logger
}

// New checks cfg and returns the handler, whose routes are relative to
// Prefix (mount it there: chi's Mount, or http.StripPrefix).
func New(cfg Config) (http.Handler, error) {
	if cfg.ACME.CA == nil || cfg.ACME.Store == nil || cfg.Trust == nil {
		return nil, fmt.Errorf("acme: the CA, its ACME store and the trust source are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NonceLifetime <= 0 {
		cfg.NonceLifetime = time.Hour
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	s := &server{cfg: cfg, acme: cfg.ACME, store: cfg.ACME.Store, log: cfg.Logger}
	r := chi.NewRouter()
	r.Use(s.nonces)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.write(w, r, &problem{Type: typeMalformed, Status: http.StatusNotFound, Detail: "no ACME resource " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.write(w, r, &problem{Type: typeMalformed, Status: http.StatusMethodNotAllowed,
			Detail: "method " + r.Method + " is not allowed here: ACME resources are fetched with POST-as-GET"})
	})
	r.Get("/directory", s.directory)
	r.Get("/new-nonce", s.newNonce)
	r.Head("/new-nonce", s.newNonce)
	r.Post("/new-account", s.newAccount)
	r.Post("/account/{id}", s.account)
	r.Post("/key-change", s.keyChange)
	r.Post("/new-order", s.newOrder)
	r.Post("/order/{id}", s.order)
	r.Post("/order/{id}/finalize", s.finalize)
	r.Post("/authz/{id}", s.authorization)
	r.Post("/chall/{id}", s.challenge)
	r.Post("/cert/{serial}", s.certificate)
	r.Post("/revoke-cert", s.revokeCert)
	r.Get("/renewal-info/{id}", s.renewalInfo)
	return r, nil
}

// base is the URL every ACME URL starts with. Rotor always serves TLS
// itself, so the scheme is https and the host the one the client asked.
func base(r *http.Request) string { return "https://" + r.Host + Prefix }

// directory answers GET /acme/directory (RFC 8555 7.1.1).
func (s *server) directory(w http.ResponseWriter, r *http.Request) {
	b := base(r)
	httpjson.Write(w, http.StatusOK, map[string]any{
		"newNonce": b + "/new-nonce", "newAccount": b + "/new-account", "newOrder": b + "/new-order",
		"revokeCert": b + "/revoke-cert", "keyChange": b + "/key-change", "renewalInfo": b + "/renewal-info",
		"meta": map[string]any{"externalAccountRequired": true,
			"website": "https://" + r.Host + "/openapi.yaml"},
	})
}

// newNonce answers HEAD (200) and GET (204) /acme/new-nonce: the nonce
// itself comes from the nonces middleware, as on every response.
func (s *server) newNonce(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// nonces gives every response a fresh Replay-Nonce, kept in the store so
// any replica accepts it once, and the directory's Link (RFC 8555 7.1).
func (s *server) nonces(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "<"+base(r)+"/directory>;rel=\"index\"")
		nonce, err := rotor.RandomID(nil, 16)
		if err == nil {
			now := s.cfg.Now()
			err = s.store.StoreNonce(r.Context(), nonce, now, now.Add(s.cfg.NonceLifetime))
		}
		if err != nil {
			s.write(w, r, err)
			return
		}
		w.Header().Set("Replay-Nonce", nonce)
		next.ServeHTTP(w, r)
	})
}
