package authn

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
)

// newReview returns a TokenReview authenticator talking to srv with the CA
// token in a file, on clk.
func newReview(t testing.TB, srv *apiServer, clk *clock, edit func(*TokenReviewConfig)) *TokenReview {
	t.Helper()
	cfg := TokenReviewConfig{APIServer: srv.URL, CAFile: serverCAFile(t, srv.Server),
		BearerTokenFile: writeFile(t, "token", []byte("ca-token-1\n")), Now: clk.Now}
	if edit != nil {
		edit(&cfg)
	}
	r, err := NewTokenReview(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const webUser = "system:serviceaccount:shop:web"

func TestTokenReview(t *testing.T) {
	t.Parallel()
	echo := "tok-echo-9f8e7d6c5b4a"
	srv := newAPIServer(t, map[string]any{
		"tok-web":          accepted(webUser, "rotor"),
		"tok-web-two-auds": accepted(webUser, "rotor", "https://kubernetes.default.svc"),
		"tok-user":         accepted("alice", "rotor"),
		"tok-other-aud":    accepted(webUser, "https://kubernetes.default.svc"),
		"tok-no-aud":       accepted(webUser),
		"tok-bad-name":     accepted("system:serviceaccount:Shop:web", "rotor"),
		"tok-extra-part":   accepted(webUser+":extra", "rotor"),
		"tok-expired":      map[string]any{"user": map[string]any{}, "error": "[invalid bearer token, service account token has expired]"},
		echo:               map[string]any{"user": map[string]any{}, "error": "token " + echo + " is not valid"},
	})
	r := newReview(t, srv, newClock(), nil)
	tests := []struct {
		name, token string
		want        rotor.ErrorCode
	}{
		{name: "ok/service-account", token: "tok-web"},
		{name: "ok/audience-among-several", token: "tok-web-two-auds"},
		{name: "ok/jwt-shaped", token: "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"},
		{name: "fail/unknown-token", token: "tok-nobody", want: rotor.EUnauthenticated},
		{name: "fail/expired", token: "tok-expired", want: rotor.EUnauthenticated},
		{name: "fail/error-would-echo-token", token: echo, want: rotor.EUnauthenticated},
		{name: "fail/not-a-service-account", token: "tok-user", want: rotor.EUnauthenticated},
		{name: "fail/other-audience", token: "tok-other-aud", want: rotor.EUnauthenticated},
		{name: "fail/audience-unconfirmed", token: "tok-no-aud", want: rotor.EUnauthenticated},
		{name: "fail/invalid-namespace", token: "tok-bad-name", want: rotor.EUnauthenticated},
		{name: "fail/extra-username-part", token: "tok-extra-part", want: rotor.EUnauthenticated},
		{name: "no-creds/empty", token: "", want: errNoCreds},
		{name: "no-creds/static-token", token: rotor.TokenPrefix + "abc", want: errNoCreds},
	}
	srv.update(func(s *apiServer) { s.answers["eyJhbGciOiJSUzI1NiJ9.e30.c2ln"] = accepted(webUser, "rotor") })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			caller, err := r.Authenticate(context.Background(), rotor.Credentials{BearerToken: tt.token})
			checkResult(t, caller, err, tt.want, NameTokenReview, shopWeb)
			if err == nil && caller.Subject != webUser {
				t.Errorf("subject = %q, want %q", caller.Subject, webUser)
			}
			if err != nil && tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error reveals the token: %v", err)
			}
		})
	}
}

func TestTokenReviewUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		server func(s *apiServer)
		config func(c *TokenReviewConfig)
	}{
		{name: "fail/server-error", server: func(s *apiServer) { s.status = http.StatusInternalServerError }},
		{name: "fail/ca-credential-refused", server: func(s *apiServer) { s.caToken = "ca-token-2" }},
		{name: "fail/rbac-forbidden", server: func(s *apiServer) { s.status = http.StatusForbidden }},
		{name: "fail/unreachable", server: func(s *apiServer) { s.Close() }},
		{name: "fail/not-a-tokenreview", server: func(s *apiServer) { s.raw = `{"kind":"Status"}` }},
		{name: "fail/garbage", server: func(s *apiServer) { s.raw = `<html>` }},
		{name: "fail/untrusted-server-certificate", config: func(c *TokenReviewConfig) { c.CAFile = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newAPIServer(t, map[string]any{"tok-web": accepted(webUser, "rotor")})
			r := newReview(t, srv, newClock(), tt.config)
			if tt.server != nil {
				srv.update(tt.server)
			}
			_, err := r.Authenticate(context.Background(), rotor.Credentials{BearerToken: "tok-web"})
			checkResult(t, rotor.Caller{}, err, rotor.EAuthUnavailable, NameTokenReview, shopWeb)
		})
	}
}

// jwtWithExp is a JWT-shaped token whose payload says it expires at exp.
func jwtWithExp(exp time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"exp":%d}`, exp.Unix()))
	return "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
}

func TestTokenReviewCache(t *testing.T) {
	t.Parallel()
	clk := newClock()
	shortLived := jwtWithExp(t0.Add(10 * time.Second))
	srv := newAPIServer(t, map[string]any{"tok-web": accepted(webUser, "rotor"), shortLived: accepted(webUser, "rotor")})
	r := newReview(t, srv, clk, nil)
	uncached := newReview(t, srv, clk, func(c *TokenReviewConfig) { c.CacheTTL = -1 })
	steps := []struct {
		a       *TokenReview
		token   string
		advance time.Duration
		want    rotor.ErrorCode
		reviews int
	}{
		{a: r, token: "tok-web", reviews: 1},
		{a: r, token: "tok-web", reviews: 1}, // remembered
		{a: r, token: "tok-nobody", want: rotor.EUnauthenticated, reviews: 2},
		{a: r, token: "tok-nobody", want: rotor.EUnauthenticated, reviews: 3}, // refusals are not
		{a: r, token: shortLived, reviews: 4},
		{a: r, token: shortLived, advance: 9 * time.Second, reviews: 4},
		{a: r, token: shortLived, advance: time.Second, reviews: 5},     // forgotten at its own exp
		{a: r, token: "tok-web", advance: 20 * time.Second, reviews: 6}, // and the rest after CacheTTL
		{a: uncached, token: "tok-web", reviews: 7},
		{a: uncached, token: "tok-web", reviews: 8},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		caller, err := s.a.Authenticate(context.Background(), rotor.Credentials{BearerToken: s.token})
		checkResult(t, caller, err, s.want, NameTokenReview, shopWeb)
		if n := srv.reviews(); n != s.reviews {
			t.Fatalf("step %d: reviews = %d, want %d", i, n, s.reviews)
		}
	}
}

func TestReviewCacheBounded(t *testing.T) {
	t.Parallel()
	c := newExpiring[[32]byte, rotor.Caller](2)
	caller := rotor.Caller{Identity: shopWeb, Authenticator: NameTokenReview, Subject: webUser}
	for i := range 5 {
		c.put([32]byte{byte(i)}, caller, t0.Add(time.Minute), t0)
		if len(c.m) > 2 {
			t.Fatalf("cache holds %d entries, bound is 2", len(c.m))
		}
		if _, ok := c.get([32]byte{byte(i)}, t0); !ok {
			t.Fatalf("entry %d just put is missing", i)
		}
	}
}

func TestTokenReviewAudiences(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		configured []string
		request    string // rotor.Credentials.Audience
		sent       []string
		answered   []string
		want       rotor.ErrorCode
	}{
		{name: "ok/request-audience", configured: []string{"rotor"}, request: "identity.l5d.io",
			sent: []string{"identity.l5d.io"}, answered: []string{"identity.l5d.io"}},
		{name: "fail/request-audience-answered-configured", configured: []string{"rotor"}, request: "identity.l5d.io",
			sent: []string{"identity.l5d.io"}, answered: []string{"rotor"}, want: rotor.EUnauthenticated},
		{name: "ok/default", configured: nil, sent: []string{"rotor"}, answered: []string{"rotor"}},
		{name: "ok/empty-flag-means-default", configured: []string{""}, sent: []string{"rotor"}, answered: []string{"rotor"}},
		{name: "ok/second-of-two", configured: []string{"a", "b"}, sent: []string{"a", "b"}, answered: []string{"b"}},
		{name: "fail/none-of-ours", configured: []string{"a", "b"}, sent: []string{"a", "b"}, answered: []string{"c"},
			want: rotor.EUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newAPIServer(t, map[string]any{"tok-web": accepted(webUser, tt.answered...)})
			srv.update(func(s *apiServer) { s.audiences = tt.sent })
			r := newReview(t, srv, newClock(), func(c *TokenReviewConfig) { c.Audiences = tt.configured })
			caller, err := r.Authenticate(context.Background(), rotor.Credentials{BearerToken: "tok-web", Audience: tt.request})
			checkResult(t, caller, err, tt.want, NameTokenReview, shopWeb)
		})
	}
}

// TestTokenReviewCacheByAudience: a token accepted for one audience is
// remembered for that audience only; asked for another, the API server is
// asked again and its answer counts.
func TestTokenReviewCacheByAudience(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, map[string]any{"tok-web": accepted(webUser, "rotor")})
	r := newReview(t, srv, newClock(), nil)
	ctx := context.Background()
	caller, err := r.Authenticate(ctx, rotor.Credentials{BearerToken: "tok-web"})
	checkResult(t, caller, err, "", NameTokenReview, shopWeb)
	srv.update(func(s *apiServer) { s.audiences = []string{"identity.l5d.io"} })
	caller, err = r.Authenticate(ctx, rotor.Credentials{BearerToken: "tok-web", Audience: "identity.l5d.io"})
	checkResult(t, caller, err, rotor.EUnauthenticated, NameTokenReview, shopWeb)
	if n := srv.reviews(); n != 2 {
		t.Errorf("%d reviews, want 2: the cached answer was for audience rotor", n)
	}
}

func TestTokenReviewRereadsOwnToken(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := newAPIServer(t, map[string]any{"tok-a": accepted(webUser, "rotor"), "tok-b": accepted(webUser, "rotor")})
	tokenPath := writeFile(t, "token", []byte("ca-token-1"))
	r := newReview(t, srv, clk, func(c *TokenReviewConfig) { c.BearerTokenFile = tokenPath })
	ctx := context.Background()
	if _, err := r.Authenticate(ctx, rotor.Credentials{BearerToken: "tok-a"}); err != nil {
		t.Fatal(err)
	}
	// The kubelet rotates the projected token; the API server accepts only
	// the new one from then on.
	if err := os.WriteFile(tokenPath, []byte("ca-token-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.update(func(s *apiServer) { s.caToken = "ca-token-2" })
	clk.Advance(time.Minute)
	caller, err := r.Authenticate(ctx, rotor.Credentials{BearerToken: "tok-b"})
	checkResult(t, caller, err, "", NameTokenReview, shopWeb)
	// A token file that disappears keeps the last token in use.
	if err := os.Remove(tokenPath); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	caller, err = r.Authenticate(ctx, rotor.Credentials{BearerToken: "tok-a"})
	checkResult(t, caller, err, "", NameTokenReview, shopWeb)
}

func TestTokenReviewConfig(t *testing.T) {
	t.Parallel()
	token := writeFile(t, "token", []byte("ca-token-1"))
	empty := writeFile(t, "empty", []byte("\n"))
	tests := []struct {
		name string
		cfg  TokenReviewConfig
		ok   bool
	}{
		{name: "ok/minimal", cfg: TokenReviewConfig{APIServer: "https://127.0.0.1:1", BearerTokenFile: token}, ok: true},
		{name: "fail/plain-http", cfg: TokenReviewConfig{APIServer: "http://127.0.0.1:1", BearerTokenFile: token}},
		{name: "fail/no-token-file", cfg: TokenReviewConfig{APIServer: "https://127.0.0.1:1"}},
		{name: "fail/missing-token-file", cfg: TokenReviewConfig{APIServer: "https://127.0.0.1:1", BearerTokenFile: token + ".x"}},
		{name: "fail/empty-token-file", cfg: TokenReviewConfig{APIServer: "https://127.0.0.1:1", BearerTokenFile: empty}},
		{name: "fail/ca-file-not-pem", cfg: TokenReviewConfig{APIServer: "https://127.0.0.1:1", BearerTokenFile: token, CAFile: token}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTokenReview(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("NewTokenReview: err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestInClusterConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443"}
	cfg, err := inClusterConfig(func(k string) string { return env[k] }, "/sa")
	if err != nil {
		t.Fatal(err)
	}
	want := TokenReviewConfig{APIServer: "https://[fd00:10:96::1]:443", CAFile: "/sa/ca.crt", BearerTokenFile: "/sa/token"}
	if cfg.APIServer != want.APIServer || cfg.CAFile != want.CAFile || cfg.BearerTokenFile != want.BearerTokenFile {
		t.Errorf("config = %+v, want %+v", cfg, want)
	}
	if _, err := inClusterConfig(func(string) string { return "" }, "/sa"); err == nil {
		t.Error("outside a pod: no error")
	}
}
