package agent_test

import (
	"crypto/x509"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
)

var t0 = time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)

func TestNextRenewal(t *testing.T) {
	t.Parallel()
	day := &x509.Certificate{NotBefore: t0, NotAfter: t0.Add(24 * time.Hour)}
	// rotor-ca backdates NotBefore by 20s: a 10s certificate spans 30s.
	short := &x509.Certificate{NotBefore: t0.Add(-20 * time.Second), NotAfter: t0.Add(10 * time.Second)}
	share := agent.DefaultRenewBefore
	tests := []struct {
		name       string
		leaf       *x509.Certificate
		issuedAt   time.Time
		renewAfter time.Time
		rb         agent.RenewBefore
		jitter     float64
		want       time.Time
	}{
		{name: "ok/share-of-lifetime", leaf: day, rb: share,
			want: rotor.RenewalTime(t0, t0.Add(24*time.Hour))},
		{name: "ok/duration", leaf: day, rb: agent.RenewBefore{Duration: time.Hour}, want: t0.Add(23 * time.Hour)},
		{name: "ok/ca-renew-after-earlier-wins", leaf: day, rb: agent.RenewBefore{Duration: time.Hour},
			renewAfter: t0.Add(16 * time.Hour), want: t0.Add(16 * time.Hour)},
		{name: "ok/ca-renew-after-later-ignored", leaf: day, rb: agent.RenewBefore{Duration: 12 * time.Hour},
			renewAfter: t0.Add(16 * time.Hour), want: t0.Add(12 * time.Hour)},
		{name: "ok/renew-after-before-issuance-ignored", leaf: day, rb: agent.RenewBefore{Duration: time.Hour},
			renewAfter: t0.Add(-time.Hour), want: t0.Add(23 * time.Hour)},
		{name: "ok/duration-longer-than-lifetime-falls-back-to-share", leaf: day,
			rb:   agent.RenewBefore{Duration: 48 * time.Hour},
			want: rotor.RenewalTime(t0, t0.Add(24*time.Hour))},
		{name: "ok/backdated-not-before-measured-from-issuance", leaf: short, issuedAt: t0, rb: agent.RenewBefore{Share: 0.5},
			want: t0.Add(5 * time.Second)},
		{name: "ok/issued-at-outside-validity-uses-not-before", leaf: day, issuedAt: t0.Add(-time.Hour),
			rb: agent.RenewBefore{Share: 0.5}, want: t0.Add(12 * time.Hour)},
		{name: "ok/full-jitter-moves-a-tenth-earlier", leaf: day, rb: agent.RenewBefore{Duration: 4 * time.Hour},
			jitter: 1, want: t0.Add(20 * time.Hour).Add(-2 * time.Hour)},
		{name: "ok/half-jitter", leaf: day, rb: agent.RenewBefore{Duration: 4 * time.Hour},
			jitter: 0.5, want: t0.Add(20 * time.Hour).Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := agent.NextRenewal(tt.leaf, tt.issuedAt, tt.renewAfter, tt.rb, tt.jitter)
			if !got.Equal(tt.want) {
				t.Errorf("NextRenewal = %v, want %v", got, tt.want)
			}
			if issued := later(tt.issuedAt, tt.leaf.NotBefore); !got.After(issued) || !got.Before(tt.leaf.NotAfter) {
				t.Errorf("renewal %v outside (%v, %v)", got, issued, tt.leaf.NotAfter)
			}
		})
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := agent.Backoff{Base: time.Second, Cap: 30 * time.Second}
	tests := []struct {
		name    string
		attempt int
		r       float64
		want    time.Duration
	}{
		{name: "ok/first-retry-full", attempt: 0, r: 0.999999, want: 999999 * time.Microsecond},
		{name: "ok/first-retry-zero", attempt: 0, r: 0, want: 0},
		{name: "ok/doubles", attempt: 3, r: 0.5, want: 4 * time.Second},
		{name: "ok/capped", attempt: 5, r: 0.5, want: 15 * time.Second},
		{name: "ok/no-overflow-far-out", attempt: 200, r: 0.5, want: 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Delay(tt.attempt, tt.r); got != tt.want {
				t.Errorf("Delay(%d, %v) = %v, want %v", tt.attempt, tt.r, got, tt.want)
			}
		})
	}
}

func TestParseRenewBefore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    agent.RenewBefore
		wantErr bool
	}{
		{in: "33%", want: agent.RenewBefore{Share: 0.33}},
		{in: "1h", want: agent.RenewBefore{Duration: time.Hour}},
		{in: "2.5%", want: agent.RenewBefore{Share: 0.025}},
		{in: "100%", wantErr: true},
		{in: "0%", wantErr: true},
		{in: "-1h", wantErr: true},
		{in: "soon", wantErr: true},
	}
	for _, tt := range tests {
		name := "ok/" + tt.in
		if tt.wantErr {
			name = "fail/" + tt.in
		}
		t.Run(name, func(t *testing.T) {
			got, err := agent.ParseRenewBefore(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
				t.Errorf("ParseRenewBefore(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if back, _ := agent.ParseRenewBefore(got.String()); err == nil && back != got {
				t.Errorf("String() = %q does not parse back to %+v", got.String(), got)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    syscall.Signal
		wantErr bool
	}{
		{in: "HUP", want: syscall.SIGHUP},
		{in: "sigusr2", want: syscall.SIGUSR2},
		{in: "10", want: syscall.Signal(10)},
		{in: "RELOAD", wantErr: true},
		{in: "0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := agent.ParseSignal(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseSignal(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := func() agent.Config {
		return agent.Config{CAURL: "https://127.0.0.1:8443", CABundleFile: "root.crt", TokenFile: "token",
			OutDir: "out", KeyType: "ecdsa-p256", RenewBefore: agent.DefaultRenewBefore}
	}
	tests := []struct {
		name    string
		mut     func(*agent.Config)
		wantErr bool
	}{
		{name: "ok/bundle-and-token-file", mut: func(*agent.Config) {}},
		{name: "ok/fingerprint-and-token", mut: func(c *agent.Config) {
			c.CABundleFile, c.CAFingerprint, c.TokenFile, c.Token = "", "sha256:"+strings.Repeat("ab", 32), "", "rotor_x"
		}},
		{name: "ok/signal-with-pid-file", mut: func(c *agent.Config) { c.Signal, c.PIDFile = syscall.SIGHUP, "pid" }},
		{name: "fail/http-url", mut: func(c *agent.Config) { c.CAURL = "http://127.0.0.1:8443" }, wantErr: true},
		{name: "fail/bundle-and-fingerprint", mut: func(c *agent.Config) { c.CAFingerprint = strings.Repeat("ab", 32) }, wantErr: true},
		{name: "fail/no-trust", mut: func(c *agent.Config) { c.CABundleFile = "" }, wantErr: true},
		{name: "fail/bad-fingerprint", mut: func(c *agent.Config) { c.CABundleFile, c.CAFingerprint = "", "abc" }, wantErr: true},
		{name: "fail/two-tokens", mut: func(c *agent.Config) { c.Token = "rotor_x" }, wantErr: true},
		{name: "fail/no-token", mut: func(c *agent.Config) { c.TokenFile = "" }, wantErr: true},
		{name: "fail/no-out-dir", mut: func(c *agent.Config) { c.OutDir = "" }, wantErr: true},
		{name: "fail/key-type", mut: func(c *agent.Config) { c.KeyType = "dsa" }, wantErr: true},
		{name: "fail/ttl-below-minimum", mut: func(c *agent.Config) { c.TTL = time.Millisecond }, wantErr: true},
		{name: "fail/exec-and-signal", mut: func(c *agent.Config) { c.Exec, c.Signal, c.PIDFile = "true", syscall.SIGHUP, "pid" }, wantErr: true},
		{name: "fail/signal-without-pid-file", mut: func(c *agent.Config) { c.Signal = syscall.SIGHUP }, wantErr: true},
		{name: "fail/no-renew-before", mut: func(c *agent.Config) { c.RenewBefore = agent.RenewBefore{} }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.mut(&c)
			if err := c.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
