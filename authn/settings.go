package authn

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// Settings say which authenticators a CA runs, as rotor-ca serve's flags
// spell them.
type Settings struct {
	StaticTokens, MTLSRenewal bool

	JWTIssuer, JWTAudience, JWTJWKSFile, JWTJWKSURL, JWTJWKSCAFile string

	// TokenReview is "in-cluster" or the API server's https URL.
	TokenReview, TokenReviewCAFile, TokenReviewTokenFile, TokenReviewAudience string

	// AdminClientCA is a PEM file of the CA whose client certificates are
	// admins.
	AdminClientCA string

	// Fresh is ChainConfig.Fresh: not a flag of its own, rotor-ca serve
	// gives it --deny-list-refresh, one bound for every take-back.
	Fresh time.Duration
}

// RegisterFlags adds the settings to fs as flags writing to s.
func (s *Settings) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&s.StaticTokens, "static-tokens", true, "accept static tokens made by \"rotor-ca token create\"")
	fs.BoolVar(&s.MTLSRenewal, "mtls-renewal", true, "accept a still-valid certificate from this CA, presented as TLS client certificate, as its identity")
	fs.StringVar(&s.JWTIssuer, "jwt-issuer", "", "accept Kubernetes service-account JWTs from this issuer (needs --jwt-jwks-file or --jwt-jwks-url)")
	fs.StringVar(&s.JWTAudience, "jwt-audience", DefaultAudience, "audience required in service-account JWTs")
	fs.StringVar(&s.JWTJWKSFile, "jwt-jwks-file", "", "JWKS file with the service-account signing keys")
	fs.StringVar(&s.JWTJWKSURL, "jwt-jwks-url", "", "https URL of the JWKS with the service-account signing keys")
	fs.StringVar(&s.JWTJWKSCAFile, "jwt-jwks-ca-file", "", "CA bundle to verify --jwt-jwks-url (default: system roots)")
	fs.StringVar(&s.TokenReview, "tokenreview", "", "verify bearer tokens with the Kubernetes TokenReview API: \"in-cluster\" or the API server's https URL")
	fs.StringVar(&s.TokenReviewCAFile, "tokenreview-ca-file", "", "CA bundle of the API server (with a --tokenreview URL)")
	fs.StringVar(&s.TokenReviewTokenFile, "tokenreview-token-file", "", "file with the bearer token rotor-ca presents to the API server (with a --tokenreview URL)")
	fs.StringVar(&s.TokenReviewAudience, "tokenreview-audience", DefaultAudience, "audience the reviewed token must have")
	fs.StringVar(&s.AdminClientCA, "admin-client-ca", "", "PEM file of a separate CA whose client certificates (clientAuth) are admins; never the workload CA")
}

// Validate checks the settings as a whole.
func (s Settings) Validate() error {
	switch {
	case s.JWTIssuer != "" && (s.JWTJWKSFile == "") == (s.JWTJWKSURL == ""):
		return errors.New("--jwt-issuer needs exactly one of --jwt-jwks-file and --jwt-jwks-url")
	case s.JWTIssuer == "" && (s.JWTJWKSFile != "" || s.JWTJWKSURL != ""):
		return errors.New("--jwt-jwks-file/--jwt-jwks-url need --jwt-issuer")
	case s.TokenReview != "" && s.TokenReview != "in-cluster" && !strings.HasPrefix(s.TokenReview, "https://"):
		return errors.New("--tokenreview must be \"in-cluster\" or an https:// URL")
	case !s.StaticTokens && s.JWTIssuer == "" && s.TokenReview == "":
		// mTLS only renews: a CA started so could never issue a first
		// certificate, and would look healthy while refusing every new
		// workload.
		return errors.New("--static-tokens=false leaves no authenticator that can issue a first certificate: " +
			"set --jwt-issuer or --tokenreview, or keep static tokens")
	}
	return nil
}

// Records is what the authenticators read from the store: static tokens
// and certificate records.
type Records interface {
	rotor.TokenStore
	CertificateRecords
}

// Chain builds the authenticators the settings turn on (NewChain): static
// tokens and certificate records are looked up in records, client
// certificates verified against trust for identities in trustDomain.
func (s Settings) Chain(records Records, trust rotor.TrustSource, trustDomain string, log *slog.Logger) (rotor.Authenticators, []string, error) {
	cc := ChainConfig{MTLS: s.MTLSRenewal, Trust: trust, Records: records, TrustDomain: trustDomain, Logger: log,
		Fresh: s.Fresh}
	if s.StaticTokens {
		cc.Tokens = records
	}
	if s.AdminClientCA != "" {
		pemBytes, err := os.ReadFile(s.AdminClientCA)
		if err == nil {
			cc.AdminCA, err = rotor.ParseCertificates(pemBytes)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--admin-client-ca: %w", err)
		}
	}
	if s.JWTIssuer != "" {
		cc.JWT = &JWTConfig{JWKSFile: s.JWTJWKSFile, JWKSURL: s.JWTJWKSURL, JWKSCAFile: s.JWTJWKSCAFile,
			Issuer: s.JWTIssuer, Audience: s.JWTAudience}
	}
	if s.TokenReview != "" {
		tr := TokenReviewConfig{APIServer: s.TokenReview, CAFile: s.TokenReviewCAFile, BearerTokenFile: s.TokenReviewTokenFile}
		if s.TokenReview == "in-cluster" {
			var err error
			if tr, err = InClusterConfig(); err != nil {
				return nil, nil, fmt.Errorf("--tokenreview in-cluster: %w", err)
			}
		}
		tr.Audiences = []string{s.TokenReviewAudience}
		cc.TokenReview = &tr
	}
	return NewChain(cc)
}
