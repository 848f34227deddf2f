package agent

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
)

// TestPollWait: the interval, or the CA's Retry-After when sooner, but not
// under the CA's own 30s floor unless the interval is shorter still.
func TestPollWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		retryAfter, interval time.Duration
		want                 time.Duration
	}{
		{name: "ok/no-retry-after-is-interval", interval: 5 * time.Minute, want: 5 * time.Minute},
		{name: "ok/retry-after-sooner", retryAfter: 2 * time.Minute, interval: 5 * time.Minute, want: 2 * time.Minute},
		{name: "ok/retry-after-later-is-interval", retryAfter: time.Hour, interval: 5 * time.Minute, want: 5 * time.Minute},
		{name: "ok/retry-after-floor", retryAfter: time.Second, interval: 5 * time.Minute, want: rotor.MinRenewalRetryAfter},
		{name: "ok/short-interval-wins-over-floor", retryAfter: 5 * time.Minute, interval: time.Second, want: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pollWait(tt.retryAfter, tt.interval); got != tt.want {
				t.Errorf("pollWait(%v, %v) = %v, want %v", tt.retryAfter, tt.interval, got, tt.want)
			}
		})
	}
}

// TestCredentials: the certificate while it is valid, unless the CA's
// window brought the renewal forward (it may be revoked), when the token
// goes instead; the certificate again if the token cannot be read then.
func TestCredentials(t *testing.T) {
	t.Parallel()
	valid := func() *Agent { return withCert(now0.Add(-10*time.Minute), now0.Add(50*time.Minute)) }
	tests := []struct {
		name        string
		a           *Agent
		advised     bool
		mtlsRefused bool
		noToken     bool
		wantToken   bool
		wantCert    bool
	}{
		{name: "ok/valid-certificate", a: valid(), wantCert: true},
		{name: "ok/advised-uses-token", a: valid(), advised: true, wantToken: true},
		{name: "ok/advised-without-token-uses-certificate", a: valid(), advised: true, noToken: true, wantCert: true},
		{name: "ok/refused-certificate-uses-token", a: valid(), mtlsRefused: true, wantToken: true},
		{name: "ok/expired-uses-token", a: withCert(now0.Add(-time.Hour), now0.Add(-time.Second)), wantToken: true},
		{name: "fail/no-certificate-no-token", a: &Agent{now: func() time.Time { return now0 }}, noToken: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.a.cfg.TokenFile = filepath.Join(t.TempDir(), "absent")
			if !tt.noToken {
				tt.a.cfg.Token, tt.a.cfg.TokenFile = "rotor_token", ""
			}
			if tt.a.cur != nil {
				tt.a.cur.advised = tt.advised
			}
			tt.a.mtlsRefused = tt.mtlsRefused
			token, cert, err := tt.a.credentials()
			if (token != "") != tt.wantToken || (cert != nil) != tt.wantCert || (err == nil) != (tt.wantToken || tt.wantCert) {
				t.Errorf("credentials() = token %v, certificate %v, %v; want token %v, certificate %v",
					token != "", cert != nil, err, tt.wantToken, tt.wantCert)
			}
		})
	}
}
