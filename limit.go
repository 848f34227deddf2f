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
	tokens float64 // below zero after Spend in debt
	last   time.Time
}

// Take takes one token for key. When there is none it reports false and
// how long until one will be there.
func (l *Limiter) Take(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	if b.tokens < 1 {
		return false, l.wait(b.tokens)
	}
	b.tokens--
	return true, 0
}

// Peek reports whether key has a token, and if not how long until it will,
// without taking one.
func (l *Limiter) Peek(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	if b.tokens < 1 {
		return false, l.wait(b.tokens)
	}
	return true, 0
}

// Spend takes a token for key even when there is none, leaving the bucket
// in debt. Requests that passed Peek together and then all failed are
// paid for in full: the source waits longer before its next try.
func (l *Limiter) Spend(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(key).tokens--
}

// wait is how long until tokens grow to one.
func (l *Limiter) wait(tokens float64) time.Duration {
	return time.Duration((1 - tokens) / l.Rate * float64(time.Second))
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

// sweep forgets buckets that have refilled, so the map
// holds only keys that were active recently.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.Rate >= float64(l.Burst) {
			delete(l.buckets, k)
		}
	}
}
