package rotor_test

import (
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
)

// TestSuggestRenewal holds each window rule to its numbers, for a 24h
// certificate issued at t0 by issuer key "aa" unless a case says otherwise.
func TestSuggestRenewal(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	cert := func(issued time.Time, life time.Duration, keyID string) *rotor.Issuance {
		return &rotor.Issuance{Serial: "ab", IssuedAt: issued, NotBefore: issued.Add(-20 * time.Second),
			NotAfter: issued.Add(life), IssuerKeyID: keyID}
	}
	day := cert(t0, 24*time.Hour, "aa")
	revoked := func(when time.Time) *rotor.Revocation {
		return &rotor.Revocation{Serial: "ab", Time: when, Reason: rotor.ReasonKeyCompromise}
	}
	tests := []struct {
		name       string
		st         rotor.CertificateStatus
		keyID      string // the CA's current issuer key; "" means "aa"
		now        time.Time
		retryAfter time.Duration
		start, end time.Time
		wantRetry  time.Duration
		open       bool
	}{
		{name: "ok/normal-two-thirds-to-halfway", st: rotor.CertificateStatus{Issuance: day}, now: at(time.Hour),
			start: at(16 * time.Hour), end: at(20 * time.Hour), wantRetry: rotor.DefaultRenewalRetryAfter},
		{name: "ok/normal-open-inside", st: rotor.CertificateStatus{Issuance: day}, now: at(17 * time.Hour),
			start: at(16 * time.Hour), end: at(20 * time.Hour), wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
		{name: "ok/normal-passed-stays-open", st: rotor.CertificateStatus{Issuance: day}, now: at(21 * time.Hour),
			start: at(16 * time.Hour), end: at(20 * time.Hour), wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
		{name: "ok/normal-retry-after-shortened-to-opening", st: rotor.CertificateStatus{Issuance: day},
			now: at(16*time.Hour - 2*time.Minute), start: at(16 * time.Hour), end: at(20 * time.Hour), wantRetry: 2 * time.Minute},
		{name: "ok/normal-retry-after-never-below-minimum", st: rotor.CertificateStatus{Issuance: day},
			now: at(16*time.Hour - 5*time.Second), start: at(16 * time.Hour), end: at(20 * time.Hour), wantRetry: rotor.MinRenewalRetryAfter},
		{name: "ok/normal-sub-second-lifetime-share", st: rotor.CertificateStatus{Issuance: cert(t0, 10*time.Second, "aa")},
			now: t0, start: at(6 * time.Second), end: at(8 * time.Second), wantRetry: rotor.MinRenewalRetryAfter},
		{name: "ok/configured-retry-after", st: rotor.CertificateStatus{Issuance: day}, now: at(time.Hour),
			retryAfter: 45 * time.Second, start: at(16 * time.Hour), end: at(20 * time.Hour), wantRetry: 45 * time.Second},
		{name: "ok/configured-retry-after-below-minimum", st: rotor.CertificateStatus{Issuance: day}, now: at(time.Hour),
			retryAfter: time.Second, start: at(16 * time.Hour), end: at(20 * time.Hour), wantRetry: rotor.MinRenewalRetryAfter},
		{name: "ok/revoked-open-since-revocation", st: rotor.CertificateStatus{Issuance: day, Revocation: revoked(at(time.Hour + 1500*time.Millisecond))},
			now: at(2 * time.Hour), start: at(time.Hour + time.Second), end: at(time.Hour + 2*time.Second),
			wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
		{name: "ok/revoked-on-a-clock-ahead", st: rotor.CertificateStatus{Issuance: day, Revocation: revoked(at(time.Hour + 3*time.Second))},
			now: at(time.Hour), start: at(time.Hour), end: at(time.Hour + time.Second), wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
		{name: "ok/revoked-wins-over-other-issuer", st: rotor.CertificateStatus{Issuance: day, Revocation: revoked(at(time.Hour))},
			keyID: "bb", now: at(2 * time.Hour), start: at(time.Hour), end: at(time.Hour + time.Second),
			wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
		{name: "ok/other-issuer-spread-ten-minutes", st: rotor.CertificateStatus{Issuance: day}, keyID: "bb",
			now: at(time.Hour + 400*time.Millisecond), start: at(time.Hour), end: at(time.Hour + 10*time.Minute),
			wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
		{name: "ok/other-issuer-half-the-time-left", st: rotor.CertificateStatus{Issuance: day}, keyID: "bb",
			now: at(24*time.Hour - 4*time.Minute), start: at(24*time.Hour - 4*time.Minute), end: at(24*time.Hour - 2*time.Minute),
			wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
		{name: "ok/other-issuer-at-least-a-second", st: rotor.CertificateStatus{Issuance: day}, keyID: "bb",
			now: at(24*time.Hour - time.Second), start: at(24*time.Hour - time.Second), end: at(24 * time.Hour),
			wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
		{name: "ok/unrecorded-issuer-key-is-not-other", st: rotor.CertificateStatus{Issuance: cert(t0, 24*time.Hour, "")},
			keyID: "bb", now: at(time.Hour), start: at(16 * time.Hour), end: at(20 * time.Hour), wantRetry: rotor.DefaultRenewalRetryAfter},
		{name: "ok/expired", st: rotor.CertificateStatus{Issuance: day}, now: at(25 * time.Hour),
			start: at(25 * time.Hour), end: at(25*time.Hour + time.Second), wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
		{name: "ok/expired-wins-over-other-issuer", st: rotor.CertificateStatus{Issuance: day}, keyID: "bb", now: at(24 * time.Hour),
			start: at(24 * time.Hour), end: at(24*time.Hour + time.Second), wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyID := tt.keyID
			if keyID == "" {
				keyID = "aa"
			}
			got := rotor.SuggestRenewal(&tt.st, keyID, tt.now, tt.retryAfter)
			if !got.Window.Start.Equal(tt.start) || !got.Window.End.Equal(tt.end) {
				t.Errorf("window [%v, %v], want [%v, %v]", got.Window.Start, got.Window.End, tt.start, tt.end)
			}
			if got.RetryAfter != tt.wantRetry {
				t.Errorf("Retry-After %v, want %v", got.RetryAfter, tt.wantRetry)
			}
			if o := got.Window.Open(tt.now); o != tt.open {
				t.Errorf("open at %v = %v, want %v", tt.now, o, tt.open)
			}
			if got.Window.Start.Location() != time.UTC || got.Window.Start.Nanosecond() != 0 || got.Window.End.Nanosecond() != 0 {
				t.Errorf("window [%v, %v] is not whole seconds in UTC", got.Window.Start, got.Window.End)
			}
			if got.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

// TestRenewAt: RFC 9773's client rule, a uniform moment between the later
// of the window's start and now, and its end.
func TestRenewAt(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	w := rotor.RenewalWindow{Start: t0, End: t0.Add(time.Hour)}
	tests := []struct {
		name string
		w    rotor.RenewalWindow
		now  time.Time
		r    float64
		want time.Time
	}{
		{name: "ok/before-start-from-start", w: w, now: t0.Add(-time.Hour), r: 0.5, want: t0.Add(30 * time.Minute)},
		{name: "ok/inside-from-now", w: w, now: t0.Add(20 * time.Minute), r: 0.5, want: t0.Add(40 * time.Minute)},
		{name: "ok/inside-r-zero-is-now", w: w, now: t0.Add(20 * time.Minute), r: 0, want: t0.Add(20 * time.Minute)},
		{name: "ok/closed-is-now", w: w, now: t0.Add(2 * time.Hour), r: 0.9, want: t0.Add(2 * time.Hour)},
		{name: "ok/empty-window-is-start", w: rotor.RenewalWindow{Start: t0, End: t0}, now: t0.Add(-time.Minute), r: 0.9, want: t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.RenewAt(tt.now, tt.r); !got.Equal(tt.want) {
				t.Errorf("RenewAt = %v, want %v", got, tt.want)
			}
		})
	}
}
