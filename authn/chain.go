package authn

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/rotor-dev/rotor"
)

// ChainConfig says which authenticators a CA runs. Each is on when its
// field is set.
type ChainConfig struct {
	// MTLS accepts a still-valid certificate from Trust, presented as TLS
	// client certificate, as its identity in TrustDomain, if Records
	// holds it unrevoked and its lineage's token is still usable.
	MTLS        bool
	Trust       rotor.TrustSource
	Records     CertificateRecords
	TrustDomain string
	// AdminCA, if set, makes client certificates chaining to these roots
	// admin callers.
	AdminCA []*x509.Certificate
	// Tokens, if set, accepts static tokens kept there.
	Tokens rotor.TokenStore
	// JWT, if set, verifies service-account JWTs offline.
	JWT *JWTConfig
	// TokenReview, if set, asks the Kubernetes API about bearer tokens.
	TokenReview *TokenReviewConfig
	Logger      *slog.Logger
	Now         func() time.Time
	// Fresh, if set, lets static tokens and mTLS lineage tokens be
	// answered from memory for this long (TokenCache): a revoked token
	// fails on every replica within it. Zero reads the store every time.
	Fresh time.Duration
}

// NewChain builds the authenticators in the order a CA tries them, with
// their names: the client certificate first (renewal needs no token round
// trip), then static tokens (one indexed read), then offline JWTs, then
// TokenReview (a call to the API server). A chain with nothing in it is
// refused: nothing could ever get a certificate.
func NewChain(cfg ChainConfig) (rotor.Authenticators, []string, error) {
	var (
		chain rotor.Authenticators
		names []string
	)
	if cfg.Fresh > 0 {
		if cfg.Tokens != nil {
			cfg.Tokens = NewTokenCache(cfg.Tokens, cfg.Fresh, cfg.Now)
		}
		if cfg.Records != nil {
			cfg.Records = cachedRecords{CertificateRecords: cfg.Records, bySubject: newFreshTokens(cfg.Fresh, cfg.Now)}
		}
	}
	if len(cfg.AdminCA) > 0 {
		if err := CheckAdminCA(cfg.AdminCA, cfg.Trust.Trust()); err != nil {
			return nil, nil, err
		}
		chain, names = append(chain, NewAdminMTLS(cfg.AdminCA, cfg.Now)), append(names, NameAdminMTLS)
	}
	if cfg.MTLS {
		if cfg.Records == nil {
			return nil, nil, fmt.Errorf("mTLS renewal needs the certificate records to check revocation")
		}
		chain, names = append(chain, NewMTLS(cfg.Trust, cfg.Records, cfg.TrustDomain, cfg.Now)), append(names, NameMTLS)
	}
	if cfg.Tokens != nil {
		chain, names = append(chain, NewStaticTokens(cfg.Tokens, cfg.Now, cfg.Logger)), append(names, NameToken)
	}
	if cfg.JWT != nil {
		jc := *cfg.JWT
		jc.Logger, jc.Now = orDefault(jc.Logger, cfg.Logger), cfg.Now
		jwt, err := NewJWT(jc)
		if err != nil {
			return nil, nil, fmt.Errorf("service-account JWT authenticator: %w", err)
		}
		chain, names = append(chain, jwt), append(names, NameJWT)
	}
	if cfg.TokenReview != nil {
		tc := *cfg.TokenReview
		tc.Logger = orDefault(tc.Logger, cfg.Logger)
		if tc.Now == nil {
			tc.Now = cfg.Now
		}
		tr, err := NewTokenReview(tc)
		if err != nil {
			return nil, nil, fmt.Errorf("TokenReview authenticator: %w", err)
		}
		chain, names = append(chain, tr), append(names, NameTokenReview)
	}
	if len(chain) == 0 {
		return nil, nil, fmt.Errorf("every authenticator is off: nothing could ever get a certificate")
	}
	return chain, names, nil
}
