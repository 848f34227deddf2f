package authn

import (
	"strings"
	"testing"
)

// TestSettingsValidate: settings that cannot work are refused before the
// CA starts, each with a message naming the flags.
func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		s       Settings
		wantErr string
	}{
		{name: "ok/static-tokens", s: Settings{StaticTokens: true}},
		{name: "ok/jwt-only", s: Settings{JWTIssuer: "https://k8s", JWTJWKSFile: "jwks.json"}},
		{name: "ok/tokenreview-only", s: Settings{TokenReview: "in-cluster"}},
		{name: "fail/nothing-issues", s: Settings{MTLSRenewal: true}, wantErr: "--static-tokens=false"},
		{name: "fail/jwt-without-keys", s: Settings{StaticTokens: true, JWTIssuer: "https://k8s"}, wantErr: "--jwt-issuer needs"},
		{name: "fail/keys-without-issuer", s: Settings{StaticTokens: true, JWTJWKSURL: "https://k8s/keys"}, wantErr: "need --jwt-issuer"},
		{name: "fail/tokenreview-http", s: Settings{TokenReview: "http://k8s"}, wantErr: "--tokenreview must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}
