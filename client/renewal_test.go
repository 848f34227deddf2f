package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

// TestRenewalInfo asks a real CA for renewal windows, and reads its
// refusals and outages back as coded errors with their Retry-After.
func TestRenewalInfo(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{TTL: time.Hour})
	c := newClient(t, ca)
	token := ca.Token(t, webapp)
	tests := []struct {
		name      string
		serial    func(t *testing.T) (string, *client.Issued)
		mode      catest.Mode
		wantCode  rotor.ErrorCode
		wantRetry time.Duration
		open      bool
	}{
		{name: "ok/normal-from-renew-after", serial: func(t *testing.T) (string, *client.Issued) {
			got, _ := issue(t, c, token)
			return got.Serial, got
		}, wantRetry: rotor.DefaultRenewalRetryAfter},
		{name: "ok/revoked-open", serial: func(t *testing.T) (string, *client.Issued) {
			got, _ := issue(t, c, token)
			ca.Revoke(t, got.Serial)
			return got.Serial, nil
		}, wantRetry: rotor.DefaultRenewalRetryAfter, open: true},
		{name: "ok/upper-case-serial", serial: func(t *testing.T) (string, *client.Issued) {
			got, _ := issue(t, c, token)
			return strings.ToUpper(got.Serial), got
		}, wantRetry: rotor.DefaultRenewalRetryAfter},
		{name: "fail/unknown-serial", serial: func(*testing.T) (string, *client.Issued) { return strings.Repeat("ab", 20), nil },
			wantCode: rotor.ENotFound},
		{name: "fail/not-a-serial", serial: func(*testing.T) (string, *client.Issued) { return "xyz", nil },
			wantCode: rotor.EInvalid},
		{name: "fail/store-unavailable", serial: func(t *testing.T) (string, *client.Issued) {
			got, _ := issue(t, c, token)
			return got.Serial, nil
		}, mode: catest.Unavailable, wantCode: rotor.EStoreUnavailable, wantRetry: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serial, issued := tt.serial(t)
			ca.SetMode(tt.mode)
			defer ca.SetMode(catest.Up)
			info, err := c.RenewalInfo(context.Background(), serial)
			if code := rotor.ErrorCodeOf(err); code != tt.wantCode {
				t.Fatalf("error code %q (%v), want %q", code, err, tt.wantCode)
			}
			if tt.wantCode != "" {
				if client.RetryAfter(err) != tt.wantRetry {
					t.Errorf("%v: Retry-After %v, want %v", err, client.RetryAfter(err), tt.wantRetry)
				}
				return
			}
			if info.RetryAfter != tt.wantRetry {
				t.Errorf("Retry-After %v, want %v", info.RetryAfter, tt.wantRetry)
			}
			if w := info.Window; w.Open(time.Now()) != tt.open || w.End.Before(w.Start) {
				t.Errorf("window [%v, %v] open %v, want %v", w.Start, w.End, w.Open(time.Now()), tt.open)
			}
			if issued != nil && !info.Window.Start.Equal(issued.RenewAfter) {
				t.Errorf("window opens %v, want renew_after %v", info.Window.Start, issued.RenewAfter)
			}
		})
	}
}
