package authn

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
)

// reviewCache remembers accepted tokens, by SHA-256, until an expiry. It
// never remembers refusals: a refused token may be one the API server has not
// seen yet. A nil *reviewCache remembers nothing.
type reviewCache struct {
	max int

	mu sync.Mutex
	m  map[[32]byte]reviewEntry
}

type reviewEntry struct {
	caller  rotor.Caller
	expires time.Time
}

func newReviewCache(max int) *reviewCache {
	return &reviewCache{max: max, m: make(map[[32]byte]reviewEntry)}
}

func (c *reviewCache) get(key [32]byte, now time.Time) (rotor.Caller, bool) {
	if c == nil {
		return rotor.Caller{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return rotor.Caller{}, false
	}
	if !now.Before(e.expires) {
		delete(c.m, key)
		return rotor.Caller{}, false
	}
	return e.caller, true
}

// put remembers caller until expires. When full it drops expired entries,
// then arbitrary ones: the cache only saves round trips, so losing an entry
// costs one more review, never a wrong answer.
func (c *reviewCache) put(key [32]byte, caller rotor.Caller, expires, now time.Time) {
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
	c.m[key] = reviewEntry{caller: caller, expires: expires}
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
