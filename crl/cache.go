// Package crl keeps the current CRL of each issuer the CA serves, so that
// answering GET /v1/crl costs neither a signature nor a list of the
// revocations. A cache asks the store at most once a CheckInterval whether a
// revocation was made anywhere (rotor.RevocationStore.RevocationHead, an
// index lookup); only then, or when a new CRL window starts
// (rotor.NewCRLWindow), does it read the issuer's revocations, and it signs
// only if they changed. Replicas share nothing but the store: each signs its
// own CRLs, with the same numbers for the same revocations (rotor.CRLNumber).
package crl

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
)

// EventSigned is logged (rotor.LogEvent) when the cache signs a new CRL.
// Attributes: issuer_key_id, number (hex), entries, this_update,
// next_update, duration.
const EventSigned = "crl.signed"

// DefaultCheckInterval is how long a CRL is served without asking the store
// whether a revocation was made: a revocation on any replica is on every
// replica's CRL within about this long.
const DefaultCheckInterval = time.Second

// Config configures a Cache. Store is required.
type Config struct {
	Store rotor.RevocationStore
	// Validity is how long each CRL is valid; zero means
	// rotor.DefaultCRLValidity. Every replica must have the same, or their
	// windows, and so their CRL numbers, disagree.
	Validity time.Duration
	// CheckInterval: zero means DefaultCheckInterval.
	CheckInterval time.Duration
	// Logger gets EventSigned at INFO; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Cache holds the current CRL of each issuer. It is safe for concurrent use.
type Cache struct {
	cfg Config

	mu      sync.Mutex
	entries map[string]*entry // by issuer key ID
}

// entry is one issuer's CRL and when it was last found current.
type entry struct {
	// turn is held (a value sent) by the one request that checks the store
	// or signs; the others wait for it, or give up when their ctx ends.
	turn    chan struct{}
	issuer  *rotor.Issuer
	crl     *rotor.CRL // nil until the first is signed
	head    int64      // the RevocationHead crl was last found current at
	checked time.Time  // when
}

// New checks cfg and returns an empty cache.
func New(cfg Config) (*Cache, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("crl cache: a store is required")
	}
	if cfg.Validity == 0 {
		cfg.Validity = rotor.DefaultCRLValidity
	}
	if cfg.Validity < rotor.MinCRLValidity {
		return nil, fmt.Errorf("crl cache: CRL validity %v is shorter than %v", cfg.Validity, rotor.MinCRLValidity)
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.CheckInterval < 0 {
		return nil, fmt.Errorf("crl cache: check interval %v is negative", cfg.CheckInterval)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{cfg: cfg, entries: map[string]*entry{}}, nil
}

// Get returns the current CRL of iss. It fails with the store's error
// (EStoreUnavailable) when the store cannot say whether the CRL is current,
// even if one is cached: a replica cut off from the store would otherwise
// serve a CRL that lacks revocations made on the others. A signer failure
// is ESignerUnavailable. The returned CRL must not be modified.
func (c *Cache) Get(ctx context.Context, iss *rotor.Issuer) (*rotor.CRL, error) {
	e := c.entry(iss)
	select {
	case e.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, rotor.WrapError(rotor.EStoreUnavailable, ctx.Err(),
			"gave up waiting for the CRL: the store or the signer is slow; retry later")
	}
	defer func() { <-e.turn }()
	if e.issuer == nil || !bytes.Equal(e.issuer.Certificate.Raw, iss.Certificate.Raw) {
		e.issuer, e.crl = iss, nil // same key, another certificate: another CRL issuer name
	}
	now := c.cfg.Now()
	w := rotor.NewCRLWindow(now, c.cfg.Validity)
	current := e.crl != nil && e.crl.Window.Start.Equal(w.Start)
	if current && !now.Before(e.checked) && now.Sub(e.checked) < c.cfg.CheckInterval {
		return e.crl, nil
	}
	// The head is read before the list: a revocation committed between the
	// two is then on the list and also moves the head at the next check,
	// which costs one list more. The other way round it could be missed.
	head, err := c.cfg.Store.RevocationHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("check the revocations of issuer %s: %w", iss.KeyID, err)
	}
	if current && head == e.head {
		e.checked = now
		return e.crl, nil
	}
	list, err := c.cfg.Store.Revocations(ctx, iss.KeyID, w.Since)
	if err != nil {
		return nil, fmt.Errorf("list the revocations of issuer %s: %w", iss.KeyID, err)
	}
	if !current || list.Version != e.crl.Version {
		start := time.Now()
		crl, err := iss.SignCRL(ctx, list, w)
		if err != nil {
			return nil, err
		}
		c.cfg.Logger.Info("signed a new CRL", rotor.LogEvent, EventSigned, "issuer_key_id", iss.KeyID,
			"number", crl.Number.Text(16), "entries", len(list.Entries), "this_update", crl.ThisUpdate,
			"next_update", crl.NextUpdate, "duration", time.Since(start))
		e.crl = crl
	}
	e.head, e.checked = head, now
	return e.crl, nil
}

// entry is iss's entry. Only the current issuer is served, so a new key
// drops the other keys' CRLs; a request still holding an old issuer makes
// its entry again, once.
func (c *Cache) entry(iss *rotor.Issuer) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[iss.KeyID]
	if e == nil {
		clear(c.entries)
		e = &entry{turn: make(chan struct{}, 1)}
		c.entries[iss.KeyID] = e
	}
	return e
}
