package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/authn"
)

// buildAuthenticators turns the authentication flags into the chain the CA
// tries in order: the client certificate first (renewal needs no token
// round trip), then static tokens (one indexed read), then offline JWTs,
// then TokenReview (a call to the API server).
func buildAuthenticators(_ context.Context, cfg *serveConfig, tokens rotor.TokenStore, trust rotor.TrustSource,
	log *slog.Logger) (rotor.Authenticators, error) {
	var chain rotor.Authenticators
	var names []string
	if cfg.MTLSRenewal {
		chain = append(chain, authn.NewMTLS(trust, cfg.TrustDomain, time.Now))
		names = append(names, "mtls")
	}
	if cfg.StaticTokens {
		chain = append(chain, authn.NewStaticTokens(tokens))
		names = append(names, "token")
	}
	if cfg.JWTIssuer != "" {
		jwt, err := authn.NewJWT(authn.JWTConfig{JWKSFile: cfg.JWTJWKSFile, JWKSURL: cfg.JWTJWKSURL,
			JWKSCAFile: cfg.JWTJWKSCA, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("service-account JWT authenticator: %w", err)
		}
		chain = append(chain, jwt)
		names = append(names, "jwt")
	}
	if cfg.TokenReview != "" {
		trCfg := authn.TokenReviewConfig{APIServer: cfg.TokenReview, CAFile: cfg.TokenReviewCAFile,
			BearerTokenFile: cfg.TokenReviewTokenFile}
		if cfg.TokenReview == "in-cluster" {
			var err error
			if trCfg, err = authn.InClusterConfig(); err != nil {
				return nil, fmt.Errorf("--tokenreview in-cluster: %w", err)
			}
		}
		trCfg.Audiences, trCfg.Logger = []string{cfg.TokenReviewAudience}, log
		tr, err := authn.NewTokenReview(trCfg)
		if err != nil {
			return nil, fmt.Errorf("TokenReview authenticator: %w", err)
		}
		chain = append(chain, tr)
		names = append(names, "tokenreview")
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: every authenticator is off: nothing could ever get a certificate", errUsage)
	}
	log.Info("authenticators", "order", names)
	return chain, nil
}
