package authn

import (
	"context"
	"time"

	"github.com/rotor-dev/rotor"
)

// TokenCache answers token lookups (by hash for static tokens, by subject
// for an mTLS renewal's lineage) from memory for up to Fresh after the
// store last answered them, and passes everything else through. A token
// is looked up on every request, and one Postgres round trip per
// certificate was a tenth of the CA's CPU; a cached answer is at most
// Fresh old, so a token revoked on any replica fails on every replica
// within Fresh (rotor-ca serve's --deny-list-refresh, the same bound as a
// denial). Expiry is exact: the caller checks StaticToken.Usable against
// its own clock. Only found tokens are cached: a token created a moment
// ago works at once. Safe for concurrent use.
type TokenCache struct {
	rotor.TokenStore
	fresh     time.Duration
	now       func() time.Time
	byHash    *expiring[string, rotor.StaticToken]
	bySubject *expiring[string, rotor.StaticToken]
}

// tokenCacheSize bounds each map; a fleet's tokens beyond it cost a
// lookup each, never a wrong answer.
const tokenCacheSize = 100000

// NewTokenCache caches store's lookups for fresh; now nil means time.Now.
func NewTokenCache(store rotor.TokenStore, fresh time.Duration, now func() time.Time) *TokenCache {
	return &TokenCache{TokenStore: store, fresh: fresh, now: orNow(now),
		byHash:    newExpiring[string, rotor.StaticToken](tokenCacheSize),
		bySubject: newExpiring[string, rotor.StaticToken](tokenCacheSize)}
}

// LookupToken implements rotor.TokenStore.
func (c *TokenCache) LookupToken(ctx context.Context, hash []byte) (rotor.StaticToken, error) {
	return cachedLookup(ctx, c.byHash, string(hash), c.fresh, c.now, func() (rotor.StaticToken, error) {
		return c.TokenStore.LookupToken(ctx, hash)
	})
}

// TokenBySubject implements rotor.TokenStore.
func (c *TokenCache) TokenBySubject(ctx context.Context, subject string) (rotor.StaticToken, error) {
	return cachedLookup(ctx, c.bySubject, subject, c.fresh, c.now, func() (rotor.StaticToken, error) {
		return c.TokenStore.TokenBySubject(ctx, subject)
	})
}

// cachedRecords is CertificateRecords whose lineage token lookups go
// through a cache as TokenCache's do; certificate status never does, since
// every renewal presents a certificate not seen before.
type cachedRecords struct {
	CertificateRecords
	fresh     time.Duration
	now       func() time.Time
	bySubject *expiring[string, rotor.StaticToken]
}

func (c cachedRecords) TokenBySubject(ctx context.Context, subject string) (rotor.StaticToken, error) {
	return cachedLookup(ctx, c.bySubject, subject, c.fresh, c.now, func() (rotor.StaticToken, error) {
		return c.CertificateRecords.TokenBySubject(ctx, subject)
	})
}

// cachedLookup answers key from m while its entry is fresh, else from
// fetch, remembering a token found for fresh.
func cachedLookup(ctx context.Context, m *expiring[string, rotor.StaticToken], key string, fresh time.Duration,
	clock func() time.Time, fetch func() (rotor.StaticToken, error)) (rotor.StaticToken, error) {
	now := clock()
	if tok, ok := m.get(key, now); ok {
		return tok, nil
	}
	tok, err := fetch()
	if err != nil || ctx.Err() != nil {
		return tok, err
	}
	m.put(key, tok, now.Add(fresh), now)
	return tok, nil
}

func orNow(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
