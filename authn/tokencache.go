package authn

import (
	"context"
	"time"

	"github.com/rotor-dev/rotor"
)

// TokenCache answers static-token lookups by hash from memory for up to
// Fresh after the store last answered them, and passes everything else
// through. A token is looked up on every request, and one Postgres round
// trip per certificate was a tenth of the CA's CPU; a cached answer is at
// most Fresh old, so a token revoked on any replica fails on every replica
// within Fresh (rotor-ca serve's --deny-list-refresh, the same bound as a
// denial). Expiry is exact: the caller checks StaticToken.Usable against
// its own clock. Only found tokens are cached: a token created a moment
// ago works at once. Safe for concurrent use.
type TokenCache struct {
	rotor.TokenStore
	byHash freshTokens
}

// NewTokenCache caches store's lookups for fresh; now nil means time.Now.
func NewTokenCache(store rotor.TokenStore, fresh time.Duration, now func() time.Time) *TokenCache {
	return &TokenCache{TokenStore: store, byHash: newFreshTokens(fresh, now)}
}

// LookupToken implements rotor.TokenStore.
func (c *TokenCache) LookupToken(ctx context.Context, hash []byte) (rotor.StaticToken, error) {
	return c.byHash.lookup(ctx, string(hash), func() (rotor.StaticToken, error) {
		return c.TokenStore.LookupToken(ctx, hash)
	})
}

// cachedRecords is CertificateRecords whose lineage token lookups (by
// subject) are cached as TokenCache's are; certificate status never is,
// since every renewal presents a certificate not seen before.
type cachedRecords struct {
	CertificateRecords
	bySubject freshTokens
}

func (c cachedRecords) TokenBySubject(ctx context.Context, subject string) (rotor.StaticToken, error) {
	return c.bySubject.lookup(ctx, subject, func() (rotor.StaticToken, error) {
		return c.CertificateRecords.TokenBySubject(ctx, subject)
	})
}

// tokenCacheSize bounds each cache; a fleet's tokens beyond it cost a
// lookup each, never a wrong answer.
const tokenCacheSize = 100000

// freshTokens remembers tokens found, by key, for fresh.
type freshTokens struct {
	fresh time.Duration
	now   func() time.Time
	m     *expiring[string, rotor.StaticToken]
}

func newFreshTokens(fresh time.Duration, now func() time.Time) freshTokens {
	if now == nil {
		now = time.Now
	}
	return freshTokens{fresh: fresh, now: now, m: newExpiring[string, rotor.StaticToken](tokenCacheSize)}
}

// lookup answers key from memory while its entry is fresh, else from
// fetch, remembering a token found.
func (f freshTokens) lookup(ctx context.Context, key string, fetch func() (rotor.StaticToken, error)) (rotor.StaticToken, error) {
	now := f.now()
	if tok, ok := f.m.get(key, now); ok {
		return tok, nil
	}
	tok, err := fetch()
	if err != nil || ctx.Err() != nil {
		return tok, err
	}
	f.m.put(key, tok, now.Add(f.fresh), now)
	return tok, nil
}
