package authn

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// expiring remembers values, by key, until an expiry: accepted tokens'
// callers for TokenReview, token records for the static tokens. It never
// remembers refusals: a refused token may be one the API server or the
// store has not seen yet. A nil *expiring remembers nothing.
type expiring[K comparable, V any] struct {
	max int

	mu sync.Mutex
	m  map[K]expiringEntry[V]
}

type expiringEntry[V any] struct {
	v       V
	expires time.Time
}

func newExpiring[K comparable, V any](max int) *expiring[K, V] {
	return &expiring[K, V]{max: max, m: make(map[K]expiringEntry[V])}
}

func (c *expiring[K, V]) get(key K, now time.Time) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return zero, false
	}
	if !now.Before(e.expires) {
		delete(c.m, key)
		return zero, false
	}
	return e.v, true
}

// put remembers v until expires. When full it drops expired entries, then
// arbitrary ones: the cache only saves round trips, so losing an entry
// costs one more lookup, never a wrong answer.
func (c *expiring[K, V]) put(key K, v V, expires, now time.Time) {
	if c == nil || !now.Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = expiringEntry[V]{v: v, expires: expires}
}

// cacheUntil shortens a cache expiry to the token's own exp when the token
// is a JWT. The claim is read unverified, which is safe because it can only
// make the cache forget sooner; the API server has verified the token.
func cacheUntil(raw string, until time.Time) time.Time {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return until
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return until
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return until
	}
	exp, err := claims.Exp.Float64()
	if err != nil {
		return until
	}
	if t := time.Unix(int64(exp), 0); t.Before(until) {
		return t
	}
	return until
}
