package authn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// TokenReviewConfig configures the Kubernetes TokenReview authenticator.
type TokenReviewConfig struct {
	// APIServer is the API server's base URL, e.g. https://10.96.0.1:443.
	APIServer string
	// CAFile verifies the API server; "" means the system roots.
	CAFile string
	// BearerTokenFile holds the CA's own token, which needs the
	// system:auth-delegator role (create tokenreviews).
	BearerTokenFile string
	// TokenRereadInterval is how often BearerTokenFile is re-read, as
	// projected tokens rotate; zero means 1m.
	TokenRereadInterval time.Duration
	// Audiences sent with each review; the answer must include one of
	// them. Empty strings are dropped; none left means {DefaultAudience}.
	Audiences []string
	// Timeout bounds one review; zero means 5s.
	Timeout time.Duration
	// CacheTTL is how long an accepted token is remembered; zero means
	// 30s, negative disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the remembered tokens; zero means 10000.
	CacheSize int
	Now       func() time.Time
	Logger    *slog.Logger
}

// inClusterDir is where Kubernetes mounts a pod's service-account token.
const inClusterDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// InClusterConfig returns the configuration for a CA running in a pod: the
// API server from KUBERNETES_SERVICE_HOST/PORT, and the pod's own
// service-account token and cluster CA.
func InClusterConfig() (TokenReviewConfig, error) {
	return inClusterConfig(os.Getenv, inClusterDir)
}

func inClusterConfig(getenv func(string) string, dir string) (TokenReviewConfig, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return TokenReviewConfig{}, fmt.Errorf("not in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset")
	}
	return TokenReviewConfig{
		APIServer:       "https://" + net.JoinHostPort(host, port),
		CAFile:          dir + "/ca.crt",
		BearerTokenFile: dir + "/token",
	}, nil
}

// TokenReview asks the Kubernetes API server whether a bearer token is valid,
// as Linkerd's identity service does. Unlike offline JWT checks it sees
// deleted pods and service accounts, at the cost of a round trip. Accepted
// tokens are cached briefly (CacheTTL, keyed by the token's SHA-256): a
// fleet restarting together presents each token again on every retry, and
// the API server should not pay for each. A revoked token may therefore be
// accepted for up to CacheTTL more. It is safe for concurrent use.
type TokenReview struct {
	cfg    TokenReviewConfig
	url    string
	client *http.Client
	token  *tokenFile
	cache  *expiring[[32]byte, rotor.Caller]
}

// NewTokenReview checks cfg and returns the authenticator. The CA file and
// the CA's own token are read now, so a misconfiguration fails at startup.
func NewTokenReview(cfg TokenReviewConfig) (*TokenReview, error) {
	if !strings.HasPrefix(cfg.APIServer, "https://") {
		return nil, fmt.Errorf("tokenreview authenticator: API server %q is not an https URL", cfg.APIServer)
	}
	if cfg.BearerTokenFile == "" {
		return nil, fmt.Errorf("tokenreview authenticator: the CA's bearer token file is required")
	}
	// An unset audience flag arrives as [""]; sending it would make the API
	// server check tokens against no audience at all.
	cfg.Audiences = slices.DeleteFunc(slices.Clone(cfg.Audiences), func(a string) bool { return a == "" })
	if len(cfg.Audiences) == 0 {
		cfg.Audiences = []string{DefaultAudience}
	}
	cfg.TokenRereadInterval = orDefault(cfg.TokenRereadInterval, time.Minute)
	cfg.Timeout = orDefault(cfg.Timeout, 5*time.Second)
	cfg.CacheTTL = orDefault(cfg.CacheTTL, 30*time.Second)
	cfg.CacheSize = orDefault(cfg.CacheSize, 10000)
	cfg.Logger = orDefault(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client, err := newHTTPClient(cfg.CAFile, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("tokenreview authenticator: %w", err)
	}
	tf := &tokenFile{path: cfg.BearerTokenFile, every: cfg.TokenRereadInterval, now: cfg.Now, log: cfg.Logger}
	if _, err := tf.get(); err != nil {
		return nil, fmt.Errorf("tokenreview authenticator: %w", err)
	}
	r := &TokenReview{cfg: cfg, client: client, token: tf,
		url: strings.TrimSuffix(cfg.APIServer, "/") + "/apis/authentication.k8s.io/v1/tokenreviews"}
	if cfg.CacheTTL > 0 {
		r.cache = newExpiring[[32]byte, rotor.Caller](cfg.CacheSize)
	}
	return r, nil
}

// tokenReview is the part of authentication.k8s.io/v1 TokenReview we use.
type tokenReview struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Spec       tokenReviewSpec    `json:"spec"`
	Status     *tokenReviewStatus `json:"status,omitempty"`
}

type tokenReviewSpec struct {
	Token     string   `json:"token"`
	Audiences []string `json:"audiences,omitempty"`
}

type tokenReviewStatus struct {
	Authenticated bool `json:"authenticated"`
	User          struct {
		Username string `json:"username"`
		UID      string `json:"uid"`
	} `json:"user"`
	Audiences []string `json:"audiences"`
	Error     string   `json:"error"`
}

// Authenticate implements rotor.Authenticator. It applies to every bearer
// token that is not a static rotor_ token. The token must be for
// cred.Audience if set, else for one of the configured audiences. The
// caller's Subject is the Kubernetes username.
func (r *TokenReview) Authenticate(ctx context.Context, cred rotor.Credentials) (rotor.Caller, error) {
	raw := cred.BearerToken
	if raw == "" || strings.HasPrefix(raw, rotor.TokenPrefix) {
		return rotor.Caller{}, rotor.ErrNoCredentials
	}
	audiences := r.cfg.Audiences
	if cred.Audience != "" {
		audiences = []string{cred.Audience}
	}
	// The audience is part of the key: a token accepted for one audience
	// says nothing about another.
	key := sha256.Sum256([]byte(strings.Join(audiences, "\x00") + "\x00\x00" + raw))
	now := r.cfg.Now()
	if caller, ok := r.cache.get(key, now); ok {
		return caller, nil
	}
	status, err := r.review(ctx, raw, audiences)
	if err != nil {
		return rotor.Caller{}, err
	}
	caller, err := r.decide(raw, status, audiences)
	if err != nil {
		return rotor.Caller{}, err
	}
	r.cache.put(key, caller, cacheUntil(raw, now.Add(r.cfg.CacheTTL)), now)
	return caller, nil
}

// review POSTs one TokenReview. Every failure to get an answer is
// EAuthUnavailable: the token may well be valid.
func (r *TokenReview) review(ctx context.Context, raw string, audiences []string) (*tokenReviewStatus, error) {
	body, err := json.Marshal(tokenReview{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview",
		Spec: tokenReviewSpec{Token: raw, Audiences: audiences}})
	if err != nil {
		return nil, rotor.WrapError(rotor.EInternal, err, "could not encode the token review")
	}
	own, err := r.token.get()
	if err != nil {
		return nil, rotor.WrapError(rotor.EAuthUnavailable, err, "the CA cannot read its own Kubernetes credential")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return nil, rotor.WrapError(rotor.EInternal, err, "could not build the token review request")
	}
	req.Header.Set("Authorization", "Bearer "+own)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, rotor.WrapError(rotor.EAuthUnavailable, err, "Kubernetes TokenReview is unreachable; retry later")
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		// 401/403 mean the CA's own credential or RBAC is wrong: an outage
		// for the operator to fix, never the caller's fault.
		r.cfg.Logger.Error("Kubernetes TokenReview failed", "status", resp.StatusCode, "url", r.url)
		return nil, rotor.Errorf(rotor.EAuthUnavailable, "Kubernetes TokenReview answered HTTP %d; retry later", resp.StatusCode)
	}
	b, err := readBody(resp)
	if err != nil {
		return nil, rotor.WrapError(rotor.EAuthUnavailable, err, "Kubernetes TokenReview answer was cut short; retry later")
	}
	var out tokenReview
	if err := json.Unmarshal(b, &out); err != nil || out.Status == nil {
		return nil, rotor.WrapError(rotor.EAuthUnavailable, err, "Kubernetes TokenReview answer is not a TokenReview")
	}
	return out.Status, nil
}

// decide turns an answered review into a caller or a refusal.
func (r *TokenReview) decide(raw string, st *tokenReviewStatus, audiences []string) (rotor.Caller, error) {
	if !st.Authenticated {
		msg := "Kubernetes rejected the token"
		if d := safeDetail(st.Error, raw); d != "" {
			msg += ": " + d
		}
		return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "%s", msg)
	}
	if !intersects(st.Audiences, audiences) {
		return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "token is not for audience %q", audiences[0])
	}
	rest, ok := strings.CutPrefix(st.User.Username, "system:serviceaccount:")
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "token does not belong to a service account")
	}
	id := rotor.Identity{Namespace: ns, ServiceAccount: sa}
	if err := id.Validate(); err != nil {
		return rotor.Caller{}, rotor.WrapError(rotor.EUnauthenticated, err, "token names an invalid service account")
	}
	return rotor.Caller{Identity: id, Authenticator: NameTokenReview, Subject: st.User.Username}, nil
}

// safeDetail returns the API server's reason for a refusal if it is short,
// printable, and contains no part of the token; otherwise "".
func safeDetail(detail, token string) string {
	if len(detail) > 200 || strings.Contains(detail, token) {
		return ""
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 4 && strings.Contains(detail, part) {
			return ""
		}
	}
	for i := 0; i < len(detail); i++ {
		if detail[i] < 0x20 || detail[i] > 0x7e {
			return ""
		}
	}
	return detail
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}
