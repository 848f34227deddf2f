package rotor_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
)

// TestNewEABKey checks the keys operators hand out: a valid identity, a
// 256-bit HMAC key, an ID of the one form, and the states eab list shows.
func TestNewEABKey(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	id := rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}
	tests := []struct {
		name     string
		id       rotor.Identity
		lifetime time.Duration
		code     rotor.ErrorCode
	}{
		{"ok/until-used", id, 0, ""},
		{"ok/a-day", id, 24 * time.Hour, ""},
		{"fail/bad-namespace", rotor.Identity{Namespace: "Default", ServiceAccount: "webapp"}, 0, rotor.EInvalid},
		{"fail/no-identity", rotor.Identity{}, 0, rotor.EInvalid},
		{"fail/negative-lifetime", id, -time.Hour, rotor.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := rotor.NewEABKey(nil, tt.id, tt.lifetime, now)
			if code := rotor.ErrorCodeOf(err); code != tt.code {
				t.Fatalf("NewEABKey: %v, want code %q", err, tt.code)
			}
			if err != nil {
				return
			}
			if !rotor.ValidEABKeyID(k.KeyID) || len(k.HMAC) != 32 || k.Identity != tt.id || !k.CreatedAt.Equal(now) {
				t.Fatalf("key %+v", k)
			}
			if tt.lifetime > 0 != !k.ExpiresAt.IsZero() || k.Usable(now) != nil || k.State(now) != "active" {
				t.Fatalf("fresh key %+v: expiry, usability or state wrong", k)
			}
		})
	}
	a, _ := rotor.NewEABKey(nil, id, 0, now)
	b, _ := rotor.NewEABKey(nil, id, 0, now)
	if a.KeyID == b.KeyID || bytes.Equal(a.HMAC, b.HMAC) {
		t.Fatal("two keys share an ID or an HMAC key")
	}
	if _, err := rotor.NewEABKey(strings.NewReader("short"), id, 0, now); err == nil {
		t.Fatal("a random source that runs dry made a key")
	}
}

// TestEABKeyUsable: a key binds one account, once, before it expires and
// unless revoked.
func TestEABKeyUsable(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	fresh, err := rotor.NewEABKey(nil, rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	bound, revoked, erased := fresh, fresh, fresh
	bound.BoundAt, bound.HMAC = now, nil
	revoked.RevokedAt, revoked.HMAC = now, nil
	erased.HMAC = nil
	tests := []struct {
		name  string
		k     rotor.EABKey
		at    time.Time
		code  rotor.ErrorCode
		state string
	}{
		{"ok/fresh", fresh, now, "", "active"},
		{"ok/just-before-expiry", fresh, now.Add(time.Hour - time.Second), "", "active"},
		{"fail/expired", fresh, now.Add(time.Hour), rotor.EUnauthenticated, "expired"},
		{"fail/bound", bound, now, rotor.EUnauthenticated, "bound"},
		{"fail/revoked", revoked, now, rotor.EUnauthenticated, "revoked"},
		{"fail/no-hmac-key", erased, now, rotor.EUnauthenticated, "active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := rotor.ErrorCodeOf(tt.k.Usable(tt.at)); code != tt.code {
				t.Fatalf("Usable: code %q, want %q", code, tt.code)
			}
			if s := tt.k.State(tt.at); s != tt.state {
				t.Fatalf("State %q, want %q", s, tt.state)
			}
		})
	}
}

// TestValidEABKeyID accepts only the IDs NewEABKey makes.
func TestValidEABKeyID(t *testing.T) {
	tests := []struct {
		kid string
		ok  bool
	}{
		{"eab_AAAAAAAAAAAAAAAA", true},
		{"eab_abc-_0123456789X", true},
		{"eab_AAAAAAAAAAAAAAA", false},
		{"eab_AAAAAAAAAAAAAAAAA", false},
		{"eab_AAAAAAAAAAAAAAA=", false},
		{"EAB_AAAAAAAAAAAAAAAA", false},
		{"token:0123456789ab", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := rotor.ValidEABKeyID(tt.kid); got != tt.ok {
			t.Errorf("ValidEABKeyID(%q) = %v, want %v", tt.kid, got, tt.ok)
		}
	}
	if _, err := rotor.RandomID(strings.NewReader(""), 16); !errors.As(err, new(*rotor.Error)) {
		t.Fatalf("RandomID from an empty source: %v, want a coded error", err)
	}
}
