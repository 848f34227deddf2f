package agent

import (
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// withCert is an agent at now0 whose certificate on disk was issued at
// issued and expires at notAfter.
func withCert(issued, notAfter time.Time) *Agent {
	leaf := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: issued, NotAfter: notAfter}
	return &Agent{now: func() time.Time { return now0 }, rand: func() float64 { return 0.5 },
		cur: &current{cert: &tls.Certificate{Leaf: leaf}, issuedAt: issued}}
}

// unavailable is a 503 (or with code ERateLimited a 429) as the client
// returns it, with Retry-After ra.
func unavailable(code rotor.ErrorCode, ra time.Duration) error {
	return &rotor.Error{Code: code, Message: "come back later", Err: &client.Problem{RetryAfter: ra}}
}

// TestRetryWait: the backoff, or the CA's Retry-After when it asks for
// longer, even past the backoff cap; but no wait sleeps through the last
// chance to renew with the certificate on disk, nor through its expiry.
func TestRetryWait(t *testing.T) {
	t.Parallel()
	noCert := &Agent{now: func() time.Time { return now0 }, rand: func() float64 { return 0.5 }}
	hour := func() *Agent { return withCert(now0.Add(-50*time.Minute), now0.Add(10*time.Minute)) } // cap 5m
	tests := []struct {
		name    string
		a       *Agent
		err     error
		attempt int
		want    time.Duration
	}{
		// Without a certificate or TTL the backoff is 1s doubling to 30s.
		{name: "ok/backoff", a: noCert, err: unavailable(rotor.EStoreUnavailable, 0), want: 500 * time.Millisecond},
		{name: "ok/retry-after-longer-than-backoff", a: noCert, err: unavailable(rotor.EStoreUnavailable, 5*time.Second),
			want: 5 * time.Second},
		{name: "ok/retry-after-shorter-than-backoff", a: noCert, err: unavailable(rotor.EStoreUnavailable, time.Second),
			attempt: 4, want: 8 * time.Second},
		{name: "ok/rate-limited-retry-after", a: noCert, err: unavailable(rotor.ERateLimited, 3*time.Second),
			want: 3 * time.Second},
		{name: "ok/retry-after-beyond-cap", a: noCert, err: unavailable(rotor.EStoreUnavailable, 2*time.Minute),
			attempt: 10, want: 2 * time.Minute},
		{name: "ok/refusal-waits-the-cap", a: noCert, err: rotor.Errorf(rotor.EUnauthenticated, "no"),
			want: 30 * time.Second},
		{name: "ok/retry-after-beyond-cap-before-expiry", a: hour(), err: unavailable(rotor.EStoreUnavailable, 8*time.Minute),
			want: 8 * time.Minute},
		{name: "ok/retry-after-cut-to-last-renewal-chance",
			a:   withCert(now0.Add(-time.Hour+10*time.Second), now0.Add(10*time.Second)),
			err: unavailable(rotor.EStoreUnavailable, time.Minute), want: 9 * time.Second},
		{name: "ok/refusal-cut-to-last-renewal-chance",
			a:   withCert(now0.Add(-time.Hour+10*time.Second), now0.Add(10*time.Second)),
			err: rotor.Errorf(rotor.EForbidden, "no"), want: 9 * time.Second},
		{name: "ok/cut-to-expiry-after-last-chance",
			a:   withCert(now0.Add(-time.Hour+500*time.Millisecond), now0.Add(500*time.Millisecond)),
			err: unavailable(rotor.EStoreUnavailable, time.Minute), want: 500 * time.Millisecond},
		{name: "ok/expired-honours-retry-after", a: withCert(now0.Add(-time.Hour), now0.Add(-time.Second)),
			err: unavailable(rotor.EStoreUnavailable, 3*time.Minute), want: 3 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.retryWait(tt.err, tt.attempt); got != tt.want {
				t.Errorf("retryWait = %v, want %v", got, tt.want)
			}
		})
	}
}
