package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rotor-dev/rotor"
)

// keySet is one fetched JWKS, by key ID, with the time it was fetched.
type keySet struct {
	keys      map[string]jose.JSONWebKey
	fetchedAt time.Time
}

// keyCache holds the issuer's verification keys. It fetches them lazily,
// refreshes them when they are older than maxAge, and refetches when a token
// names an unknown key (the issuer rotated) but at most once per minRefresh,
// so that tokens with made-up key IDs cannot turn the CA into a load
// generator against the JWKS endpoint.
type keyCache struct {
	fetch      func(ctx context.Context) ([]byte, error)
	source     string // the file or URL, for logs
	maxAge     time.Duration
	minRefresh time.Duration
	now        func() time.Time
	log        *slog.Logger

	// sem admits one fetch at a time; waiters honour their ctx.
	sem chan struct{}

	mu        sync.Mutex
	set       *keySet // nil until a fetch succeeds
	attempted time.Time
	lastErr   error
}

// key returns the verification key named kid. Errors are *rotor.Error:
// EUnauthenticated for a key the issuer does not publish, EAuthUnavailable
// when the keys cannot be fetched and so the question cannot be decided.
func (c *keyCache) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	if kid == "" {
		return jose.JSONWebKey{}, rotor.Errorf(rotor.EUnauthenticated, "JWT header names no key (kid)")
	}
	c.mu.Lock()
	k, known := c.lookup(kid)
	stale := known && c.now().Sub(c.set.fetchedAt) >= c.maxAge && c.due()
	c.mu.Unlock()
	if known {
		if stale {
			c.refreshStale(ctx)
		}
		return k, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return jose.JSONWebKey{}, rotor.WrapError(rotor.EAuthUnavailable, ctx.Err(), "gave up waiting for the JWT signing keys")
	}
	defer func() { <-c.sem }()
	// Another caller may have fetched while we waited; fetch only if the
	// key is still unknown and the rate limit allows.
	c.mu.Lock()
	_, known = c.lookup(kid)
	due := c.due()
	c.mu.Unlock()
	if !known && due {
		c.refresh(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.lookup(kid); ok {
		return k, nil
	}
	switch {
	case c.set == nil:
		return jose.JSONWebKey{}, rotor.WrapError(rotor.EAuthUnavailable, c.lastErr, "JWT signing keys are unavailable; retry later")
	case c.lastErr != nil:
		// Our copy may be stale and we could not refresh it: the key may
		// be a new one, so this is an outage, not a refusal.
		return jose.JSONWebKey{}, rotor.WrapError(rotor.EAuthUnavailable, c.lastErr, "JWT signing keys could not be refreshed; retry later")
	}
	return jose.JSONWebKey{}, rotor.Errorf(rotor.EUnauthenticated, "JWT is signed by a key the issuer does not publish")
}

// noKeysRetry caps the wait between fetches while no key set was ever
// fetched: every token needs one then, so retry sooner than minRefresh.
const noKeysRetry = 5 * time.Second

// due reports whether the rate limit allows a fetch now. The caller holds mu.
func (c *keyCache) due() bool {
	interval := c.minRefresh
	if c.set == nil && interval > noKeysRetry {
		interval = noKeysRetry
	}
	return c.attempted.IsZero() || c.now().Sub(c.attempted) >= interval
}

// lookup finds kid in the current set. The caller holds mu.
func (c *keyCache) lookup(kid string) (jose.JSONWebKey, bool) {
	if c.set == nil {
		return jose.JSONWebKey{}, false
	}
	k, ok := c.set.keys[kid]
	return k, ok
}

// refreshStale refetches an old key set if no other fetch is running; the
// caller goes on with the key it has either way.
func (c *keyCache) refreshStale(ctx context.Context) {
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
		c.refresh(ctx)
	default:
	}
}

// refresh fetches and installs the key set. On failure it keeps the old set
// and records the error. The caller holds sem.
func (c *keyCache) refresh(ctx context.Context) {
	now := c.now()
	b, err := c.fetch(ctx)
	var keys map[string]jose.JSONWebKey
	if err == nil {
		keys, err = parseJWKS(b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempted, c.lastErr = now, err
	if err != nil {
		c.log.Warn("could not fetch JWT signing keys", "source", c.source, "have_cached_keys", c.set != nil, "error", err)
		return
	}
	c.set = &keySet{keys: keys, fetchedAt: now}
}

// parseJWKS keeps the public signing keys of a JWK Set that have a key ID.
// Symmetric and private keys are dropped: a JWKS publishes public keys, and
// a symmetric one would only ever serve an HS256 forgery.
func parseJWKS(b []byte) (map[string]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.KeyID == "" || !k.IsPublic() || !k.Valid() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys[k.KeyID] = k
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS holds no public signing key with a key ID")
	}
	return keys, nil
}

// fileFetcher reads a JWKS from a file, such as one an operator copied from
// the API server's /openid/v1/jwks.
func fileFetcher(path string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read JWKS: %w", err)
		}
		return b, nil
	}
}

// urlFetcher GETs a JWKS, with a bearer token when bearer is set (the
// Kubernetes API serves /openid/v1/jwks to authenticated callers only).
func urlFetcher(client *http.Client, url string, bearer *tokenFile) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("JWKS request: %w", err)
		}
		req.Header.Set("Accept", "application/json, application/jwk-set+json")
		if bearer != nil {
			tok, err := bearer.get()
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch JWKS: %s answered %s", url, resp.Status)
		}
		return readBody(resp)
	}
}
