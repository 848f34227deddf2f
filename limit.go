package rotor

import (
	"sync"
	"time"
)

// Limiter is a token bucket per key: Rate tokens a second with bursts of
// Burst. Keyed by identity it protects the signer and store from one
// identity gone wild (a crash-looping workload) without affecting the
// others; keyed by remote address it stops one source from flooding the
// CA with requests that fail authentication. Safe for concurrent use.
type Limiter struct {
	Rate  float64
	Burst int
	Now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	calls   int
}

type bucket struct {
	tokens  float64
	last    time.Time
	pending int // tokens Hold has set aside and not yet released
}

// Take takes one token for key. When there is none it reports false and
// how long until one will be there.
func (l *Limiter) Take(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	if free := b.tokens - float64(b.pending); free < 1 {
		return false, l.wait(free)
	}
	b.tokens--
	return true, 0
}

// Hold sets a token aside for key while the caller finds out whether it is
// spent: release(true) takes it, release(false) gives it back. Held tokens
// count against the bucket, so concurrent requests cannot all pass a check
// that the bucket has tokens for only some of. When no token is free it
// reports false, how long until one will be, and a nil release.
func (l *Limiter) Hold(key string) (ok bool, wait time.Duration, release func(spend bool)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	if free := b.tokens - float64(b.pending); free < 1 {
		return false, l.wait(free), nil
	}
	b.pending++
	var once sync.Once
	return true, 0, func(spend bool) {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			b.pending--
			if spend {
				b.tokens--
			}
		})
	}
}

// wait is how long until free tokens grow to one.
func (l *Limiter) wait(free float64) time.Duration {
	return time.Duration((1 - free) / l.Rate * float64(time.Second))
}

// refill returns key's bucket brought up to now. l.mu must be held.
func (l *Limiter) refill(key string) *bucket {
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	if l.buckets == nil {
		l.buckets = make(map[string]*bucket)
	}
	l.calls++
	if l.calls%4096 == 0 {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(l.Burst), last: now}
		l.buckets[key] = b
	}
	b.tokens = min(float64(l.Burst), b.tokens+now.Sub(b.last).Seconds()*l.Rate)
	b.last = now
	return b
}

// sweep forgets buckets that have refilled and hold nothing, so the map
// holds only keys that were active recently.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.pending == 0 && b.tokens+now.Sub(b.last).Seconds()*l.Rate >= float64(l.Burst) {
			delete(l.buckets, k)
		}
	}
}
