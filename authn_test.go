package rotor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rotor-dev/rotor"
)

// authFunc lets the chain's ordering rules be tested on their own; the real
// authenticators are tested in package authn.
type authFunc func() (rotor.Caller, error)

func (f authFunc) Authenticate(context.Context, rotor.Credentials) (rotor.Caller, error) { return f() }

func TestAuthenticatorsOrder(t *testing.T) {
	accept := authFunc(func() (rotor.Caller, error) { return rotor.Caller{Identity: webapp, Authenticator: "token"}, nil })
	notMine := authFunc(func() (rotor.Caller, error) { return rotor.Caller{}, rotor.ErrNoCredentials })
	reject := authFunc(func() (rotor.Caller, error) { return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "expired") })
	down := authFunc(func() (rotor.Caller, error) { return rotor.Caller{}, rotor.Errorf(rotor.EAuthUnavailable, "jwks down") })
	tests := []struct {
		name  string
		chain rotor.Authenticators
		token string
		want  rotor.ErrorCode
	}{
		{name: "ok/first", chain: rotor.Authenticators{accept, reject}},
		{name: "ok/after-not-mine-reject-and-outage", chain: rotor.Authenticators{notMine, reject, down, accept}},
		{name: "fail/empty", chain: nil, want: rotor.EUnauthenticated},
		{name: "fail/outage-outranks-rejection", chain: rotor.Authenticators{reject, down}, want: rotor.EAuthUnavailable},
		{name: "fail/rejection-outranks-no-credentials", chain: rotor.Authenticators{notMine, reject}, want: rotor.EUnauthenticated},
		{name: "fail/token-nobody-claims", chain: rotor.Authenticators{notMine}, token: "opaque", want: rotor.EUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caller, err := tt.chain.Authenticate(context.Background(), rotor.Credentials{BearerToken: tt.token})
			if code := rotor.ErrorCodeOf(err); code != tt.want {
				t.Fatalf("code = %q (%v), want %q", code, err, tt.want)
			}
			if err == nil && caller.Identity != webapp {
				t.Errorf("caller = %+v", caller)
			}
			if (tt.token != "" || tt.name == "fail/rejection-outranks-no-credentials") && errors.Is(err, rotor.ErrNoCredentials) {
				t.Errorf("got no-credentials, but credentials were sent")
			}
		})
	}
}
