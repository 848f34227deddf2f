package authn

import (
	"context"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor"
)

// newTokenStore returns a store holding one static token for shopWeb, and
// that token.
func newTokenStore(t testing.TB) (rotor.TokenStore, string) {
	t.Helper()
	token, stored, err := rotor.NewStaticToken(nil, shopWeb, t0)
	if err != nil {
		t.Fatal(err)
	}
	s := &memTokens{}
	if err := s.CreateToken(context.Background(), stored); err != nil {
		t.Fatal(err)
	}
	return s, token
}

func TestStaticTokens(t *testing.T) {
	t.Parallel()
	store, token := newTokenStore(t)
	unknown, _, err := rotor.NewStaticToken(nil, shopWeb, t0)
	if err != nil {
		t.Fatal(err)
	}
	a := NewStaticTokens(store)
	tests := []struct {
		name string
		cred rotor.Credentials
		want rotor.ErrorCode
	}{
		{name: "ok/known-token", cred: rotor.Credentials{BearerToken: token}},
		{name: "fail/unknown-token", cred: rotor.Credentials{BearerToken: unknown}, want: rotor.EUnauthenticated},
		{name: "fail/truncated-token", cred: rotor.Credentials{BearerToken: token[:len(token)-1]}, want: rotor.EUnauthenticated},
		{name: "fail/prefix-only", cred: rotor.Credentials{BearerToken: rotor.TokenPrefix}, want: rotor.EUnauthenticated},
		{name: "no-creds/empty", cred: rotor.Credentials{}, want: errNoCreds},
		{name: "no-creds/jwt-shaped", cred: rotor.Credentials{BearerToken: "eyJh.eyJz.c2ln"}, want: errNoCreds},
		{name: "no-creds/prefix-not-at-start", cred: rotor.Credentials{BearerToken: "x" + token}, want: errNoCreds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			caller, err := a.Authenticate(context.Background(), tt.cred)
			checkResult(t, caller, err, tt.want, NameToken, shopWeb)
			if err == nil && (strings.Contains(caller.Subject, token[len(rotor.TokenPrefix):]) ||
				caller.Subject != (rotor.StaticToken{Hash: rotor.HashToken(token)}).Subject()) {
				t.Errorf("subject = %q, want the hash prefix and not the token", caller.Subject)
			}
		})
	}
}

func TestStaticTokensStoreDown(t *testing.T) {
	t.Parallel()
	_, token := newTokenStore(t)
	a := NewStaticTokens(&memTokens{down: true})
	_, err := a.Authenticate(context.Background(), rotor.Credentials{BearerToken: token})
	checkResult(t, rotor.Caller{}, err, rotor.EStoreUnavailable, NameToken, shopWeb)
}
