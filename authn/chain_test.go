package authn

import (
	"context"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/rotor-dev/rotor"
)

// TestChain shows rotor.Authenticators' ordering rules with the real
// authenticators: the first acceptance wins, an outage outranks a
// rejection, a rejection outranks "not mine".
func TestChain(t *testing.T) {
	t.Parallel()
	clk := newClock()
	store, static := newTokenStore(t)
	unknownStatic, _, err := rotor.NewStaticToken(nil, shopWeb, t0)
	if err != nil {
		t.Fatal(err)
	}
	jwksUp := newJWKSServer(t, jwksOf(t, "ec-256"))
	jwksDown := newJWKSServer(t, jwksOf(t, "ec-256"))
	jwksDown.update(func(s *jwksServer) { s.status = http.StatusServiceUnavailable })
	foreignJWT := mint(t, "ec-256", "ec-256", jose.ES256, with(saClaims(t0), map[string]any{"iss": "https://other.example"}))
	goodJWT := mint(t, "ec-256", "ec-256", jose.ES256, saClaims(t0))
	apiUp := newAPIServer(t, map[string]any{foreignJWT: accepted(webUser, "rotor")})
	apiDown := newAPIServer(t, nil)
	apiDown.update(func(s *apiServer) { s.status = http.StatusServiceUnavailable })
	pki, retired := newPKI(t, "current"), newPKI(t, "retired")

	var (
		tokens   = NewStaticTokens(store, clk.Now, nil)
		storeOut = NewStaticTokens(closedStore(t), nil, nil)
		jwtUp    = newURLJWT(t, jwksUp, clk, nil)
		jwtDown  = newURLJWT(t, jwksDown, clk, nil)
		reviewUp = newReview(t, apiUp, clk, nil)
		reviewDn = newReview(t, apiDown, clk, nil)
		mtls     = NewMTLS(pki.trust(t), onRecord, trustDomain, clk.Now)
	)
	tests := []struct {
		name     string
		chain    rotor.Authenticators
		cred     rotor.Credentials
		want     rotor.ErrorCode
		accepter string
	}{
		{name: "ok/jwks-down-static-token", chain: rotor.Authenticators{jwtDown, tokens},
			cred: rotor.Credentials{BearerToken: static}, accepter: NameToken},
		{name: "fail/jwks-down-no-static-token", chain: rotor.Authenticators{tokens, jwtDown},
			cred: rotor.Credentials{BearerToken: goodJWT}, want: rotor.EAuthUnavailable},
		{name: "ok/jwt-refuses-tokenreview-accepts", chain: rotor.Authenticators{tokens, jwtUp, reviewUp},
			cred: rotor.Credentials{BearerToken: foreignJWT}, accepter: NameTokenReview},
		{name: "fail/outage-outranks-rejection", chain: rotor.Authenticators{jwtUp, reviewDn},
			cred: rotor.Credentials{BearerToken: foreignJWT}, want: rotor.EAuthUnavailable},
		{name: "ok/jwt-accepts-before-tokenreview-outage", chain: rotor.Authenticators{jwtUp, reviewDn},
			cred: rotor.Credentials{BearerToken: goodJWT}, accepter: NameJWT},
		{name: "fail/static-token-never-sent-to-tokenreview", chain: rotor.Authenticators{tokens, reviewDn},
			cred: rotor.Credentials{BearerToken: unknownStatic}, want: rotor.EUnauthenticated},
		{name: "ok/retired-root-cert-falls-through-to-token", chain: rotor.Authenticators{mtls, tokens},
			cred:     rotor.Credentials{PeerCertificates: retired.leaf(t, shopWeb, trustDomain, nil), BearerToken: static},
			accepter: NameToken},
		{name: "fail/retired-root-cert-alone", chain: rotor.Authenticators{mtls, tokens},
			cred: rotor.Credentials{PeerCertificates: retired.leaf(t, shopWeb, trustDomain, nil)}, want: rotor.EUnauthenticated},
		{name: "ok/valid-cert-despite-unknown-token", chain: rotor.Authenticators{mtls, tokens},
			cred:     rotor.Credentials{PeerCertificates: pki.leaf(t, shopWeb, trustDomain, nil), BearerToken: unknownStatic},
			accepter: NameMTLS},
		{name: "fail/store-down", chain: rotor.Authenticators{mtls, storeOut},
			cred: rotor.Credentials{BearerToken: static}, want: rotor.EStoreUnavailable},
		{name: "fail/nothing-presented", chain: rotor.Authenticators{mtls, tokens, jwtUp, reviewUp},
			cred: rotor.Credentials{}, want: errNoCreds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			caller, err := tt.chain.Authenticate(context.Background(), tt.cred)
			checkResult(t, caller, err, tt.want, tt.accepter, shopWeb)
		})
	}
}
