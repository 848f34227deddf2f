package authn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/rotor-dev/rotor"
)

// DefaultAudience is the audience Rotor expects in service-account tokens
// and asks TokenReview for. Pods request it in their projected volume.
const DefaultAudience = "rotor"

// asymmetricAlgorithms are every JWS algorithm the JWT authenticator may
// accept, and all it accepts by default: the key set is public, so "none"
// and HMAC are never among them. Kubernetes signs with RS256 or ES256; the
// rest cover other key types. Unexported and copied on use, so nothing can
// widen the allow-list at run time.
func asymmetricAlgorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512,
		jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}
}

// JWTConfig configures the offline service-account JWT authenticator. Exactly
// one of JWKSFile and JWKSURL is set.
type JWTConfig struct {
	// JWKSFile is a JWK Set on disk, re-read like a URL would be fetched.
	JWKSFile string
	// JWKSURL is an https URL serving the JWK Set, such as
	// https://kubernetes.default.svc/openid/v1/jwks.
	JWKSURL string
	// JWKSCAFile verifies JWKSURL's server; "" means the system roots.
	JWKSCAFile string
	// JWKSBearerTokenFile, if set, authenticates the JWKS fetch (the API
	// server serves its JWKS to authenticated callers only).
	JWKSBearerTokenFile string
	// RefreshInterval is the age past which the key set is refetched;
	// zero means 1h.
	RefreshInterval time.Duration
	// MinRefreshInterval rate-limits fetches caused by unknown key IDs;
	// zero means 30s.
	MinRefreshInterval time.Duration
	// HTTPTimeout bounds one JWKS fetch; zero means 10s.
	HTTPTimeout time.Duration
	// Issuer must equal the tokens' iss claim. Required.
	Issuer string
	// Audience must be among the tokens' aud; "" means DefaultAudience.
	Audience string
	// Algorithms narrows the accepted algorithms; nil means every
	// asymmetric one. "none" and HMAC algorithms are refused: the key set
	// is public.
	Algorithms []jose.SignatureAlgorithm
	// Leeway tolerates clock skew on exp, nbf and iat; zero means 30s.
	Leeway time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// JWT verifies Kubernetes projected service-account tokens offline, against
// the issuer's published keys. Offline means it cannot see that a pod or
// service account was deleted before its token expired; use TokenReview when
// that matters. It is safe for concurrent use.
type JWT struct {
	cfg  JWTConfig
	keys *keyCache
}

// NewJWT checks cfg and returns the authenticator. A JWKSFile is read now,
// so a bad file fails at startup; a JWKSURL is fetched on first use, so the
// CA can start while the API server is unreachable.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("jwt authenticator: issuer is required")
	}
	if (cfg.JWKSFile == "") == (cfg.JWKSURL == "") {
		return nil, fmt.Errorf("jwt authenticator: set exactly one of JWKS file and JWKS URL")
	}
	if cfg.Algorithms == nil {
		cfg.Algorithms = asymmetricAlgorithms()
	}
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	for _, alg := range cfg.Algorithms {
		if !isAsymmetric(alg) {
			return nil, fmt.Errorf("jwt authenticator: algorithm %q is not an asymmetric signature algorithm", alg)
		}
	}
	cfg.Audience = orDefault(cfg.Audience, DefaultAudience)
	cfg.RefreshInterval = orDefault(cfg.RefreshInterval, time.Hour)
	cfg.MinRefreshInterval = orDefault(cfg.MinRefreshInterval, 30*time.Second)
	cfg.HTTPTimeout = orDefault(cfg.HTTPTimeout, 10*time.Second)
	cfg.Leeway = orDefault(cfg.Leeway, 30*time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = orDefault(cfg.Logger, slog.Default())
	kc := &keyCache{maxAge: cfg.RefreshInterval, minRefresh: cfg.MinRefreshInterval,
		now: cfg.Now, log: cfg.Logger, sem: make(chan struct{}, 1)}
	if cfg.JWKSFile != "" {
		kc.source, kc.fetch = cfg.JWKSFile, fileFetcher(cfg.JWKSFile)
		if kc.refresh(context.Background()); kc.lastErr != nil {
			return nil, fmt.Errorf("jwt authenticator: %w", kc.lastErr)
		}
	} else {
		if !strings.HasPrefix(cfg.JWKSURL, "https://") {
			return nil, fmt.Errorf("jwt authenticator: JWKS URL %q is not https", cfg.JWKSURL)
		}
		client, err := newHTTPClient(cfg.JWKSCAFile, cfg.HTTPTimeout)
		if err != nil {
			return nil, fmt.Errorf("jwt authenticator: %w", err)
		}
		var bearer *tokenFile
		if cfg.JWKSBearerTokenFile != "" {
			bearer = &tokenFile{path: cfg.JWKSBearerTokenFile, every: time.Minute, now: cfg.Now, log: cfg.Logger}
		}
		kc.source, kc.fetch = cfg.JWKSURL, urlFetcher(client, cfg.JWKSURL, bearer)
	}
	return &JWT{cfg: cfg, keys: kc}, nil
}

// kubernetesClaims is the private claim the API server adds to
// service-account tokens.
type kubernetesClaims struct {
	Kubernetes *struct {
		Namespace      string `json:"namespace"`
		ServiceAccount struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"serviceaccount"`
	} `json:"kubernetes.io"`
}

// Authenticate implements rotor.Authenticator. It applies to bearer tokens
// shaped like a compact JWS (three dot-separated parts), whose aud must hold
// cred.Audience if set, else the configured audience; anything else is
// rotor.ErrNoCredentials. The caller's Subject is the token's sub.
func (j *JWT) Authenticate(ctx context.Context, cred rotor.Credentials) (rotor.Caller, error) {
	raw := cred.BearerToken
	if strings.HasPrefix(raw, rotor.TokenPrefix) || strings.Count(raw, ".") != 2 {
		return rotor.Caller{}, rotor.ErrNoCredentials
	}
	tok, err := jwt.ParseSigned(raw, j.cfg.Algorithms)
	if err != nil {
		return rotor.Caller{}, rotor.WrapError(rotor.EUnauthenticated, err, "bearer token is not a JWT signed with an accepted algorithm")
	}
	// Refuse a foreign issuer before fetching keys, so its tokens never
	// cost a network round trip. Unverified claims only ever refuse here.
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return rotor.Caller{}, rotor.WrapError(rotor.EUnauthenticated, err, "JWT claims are malformed")
	}
	if unverified.Issuer != j.cfg.Issuer {
		return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "JWT issuer is not the one this CA trusts")
	}
	hdr := tok.Headers[0]
	key, err := j.keys.key(ctx, hdr.KeyID)
	if err != nil {
		return rotor.Caller{}, err
	}
	if key.Algorithm != "" && key.Algorithm != hdr.Algorithm {
		return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "JWT algorithm does not match its key's")
	}
	var claims jwt.Claims
	var k8s kubernetesClaims
	if err := tok.Claims(key.Key, &claims, &k8s); err != nil {
		return rotor.Caller{}, rotor.WrapError(rotor.EUnauthenticated, err, "JWT signature does not verify")
	}
	if err := j.checkClaims(claims, cmp.Or(cred.Audience, j.cfg.Audience)); err != nil {
		return rotor.Caller{}, err
	}
	id, err := k8s.identity(claims.Subject)
	if err != nil {
		return rotor.Caller{}, err
	}
	return rotor.Caller{Identity: id, Authenticator: NameJWT, Subject: claims.Subject}, nil
}

// checkClaims checks the registered claims, the audience against aud;
// messages are safe to show.
func (j *JWT) checkClaims(c jwt.Claims, aud string) error {
	if c.Expiry == nil {
		// Legacy secret-based tokens never expire; only bound ones count.
		return rotor.Errorf(rotor.EUnauthenticated, "JWT has no expiry: use a projected service-account token")
	}
	err := c.ValidateWithLeeway(jwt.Expected{Issuer: j.cfg.Issuer, AnyAudience: jwt.Audience{aud},
		Time: j.cfg.Now()}, j.cfg.Leeway)
	var msg string
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrExpired):
		msg = "JWT has expired"
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		msg = "JWT is not valid yet: check the clocks"
	case errors.Is(err, jwt.ErrInvalidAudience):
		msg = fmt.Sprintf("JWT audience does not include %q", aud)
	default:
		msg = "JWT claims are not acceptable"
	}
	return rotor.WrapError(rotor.EUnauthenticated, err, "%s", msg)
}

// identity reads the workload identity from the kubernetes.io claim and
// cross-checks it against sub, which the API server derives from the same
// service account: a mismatch means the token was not minted by it.
func (k kubernetesClaims) identity(sub string) (rotor.Identity, error) {
	if k.Kubernetes == nil {
		return rotor.Identity{}, rotor.Errorf(rotor.EUnauthenticated, "JWT has no kubernetes.io claim: not a service-account token")
	}
	id := rotor.Identity{Namespace: k.Kubernetes.Namespace, ServiceAccount: k.Kubernetes.ServiceAccount.Name}
	if err := id.Validate(); err != nil {
		return rotor.Identity{}, rotor.WrapError(rotor.EUnauthenticated, err, "JWT names an invalid service account")
	}
	if sub != serviceAccountUsername(id) {
		return rotor.Identity{}, rotor.Errorf(rotor.EUnauthenticated, "JWT subject does not match its kubernetes.io claim")
	}
	return id, nil
}

// serviceAccountUsername is the name Kubernetes gives a service account's
// tokens: system:serviceaccount:<ns>:<sa>.
func serviceAccountUsername(id rotor.Identity) string {
	return "system:serviceaccount:" + id.Namespace + ":" + id.ServiceAccount
}

func isAsymmetric(alg jose.SignatureAlgorithm) bool {
	return slices.Contains(asymmetricAlgorithms(), alg)
}

// orDefault returns v, or def when v is the zero value.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
