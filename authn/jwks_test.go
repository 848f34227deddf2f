package authn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rotor-dev/rotor"
)

// jwksServer is a real TLS server publishing a JWKS the test can change,
// counting fetches.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	status int    // answered instead of the JWKS when not 0
	bearer string // required token, if set
	hits   int
	block  chan struct{} // if set, each request waits for it to close
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	s := &jwksServer{body: body}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits++
		body, status, bearer, block := s.body, s.status, s.bearer, s.block
		s.mu.Unlock()
		if block != nil {
			<-block
		}
		switch {
		case bearer != "" && r.Header.Get("Authorization") != "Bearer "+bearer:
			w.WriteHeader(http.StatusUnauthorized)
		case status != 0:
			w.WriteHeader(status)
		default:
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_, _ = w.Write(body)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) update(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *jwksServer) fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

// newURLJWT returns an authenticator fetching from srv and trusting its
// certificate, on clk.
func newURLJWT(t testing.TB, srv *jwksServer, clk *clock, edit func(*JWTConfig)) *JWT {
	t.Helper()
	cfg := JWTConfig{JWKSURL: srv.URL + "/openid/v1/jwks", JWKSCAFile: serverCAFile(t, srv.Server),
		Issuer: testIssuer, Now: clk.Now}
	if edit != nil {
		edit(&cfg)
	}
	a, err := NewJWT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// step authenticates a token signed now by key and checks the code and the
// number of fetches the server has seen so far.
func step(t *testing.T, a *JWT, srv *jwksServer, clk *clock, key string, want rotor.ErrorCode, wantFetches int) {
	t.Helper()
	tok := mint(t, key, key, testKeys()[key].alg, saClaims(clk.Now()))
	caller, err := a.Authenticate(context.Background(), rotor.Credentials{BearerToken: tok})
	checkResult(t, caller, err, want, NameJWT, shopWeb)
	if got := srv.fetches(); got != wantFetches {
		t.Fatalf("JWKS fetches = %d, want %d", got, wantFetches)
	}
}

func TestJWTKeyRotation(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, jwksOf(t, "rsa-1"))
	clk := newClock()
	a := newURLJWT(t, srv, clk, nil)
	step(t, a, srv, clk, "rsa-1", "", 1) // fetched lazily, on first use
	step(t, a, srv, clk, "rsa-1", "", 1) // then cached
	srv.update(func(s *jwksServer) { s.body = jwksOf(t, "rsa-1", "rsa-2") })
	clk.Advance(30 * time.Second)
	step(t, a, srv, clk, "rsa-2", "", 2)                     // unknown kid: refetch
	step(t, a, srv, clk, "rogue", rotor.EUnauthenticated, 2) // unknown kid again: rate-limited
	clk.Advance(30 * time.Second)
	step(t, a, srv, clk, "rogue", rotor.EUnauthenticated, 3) // allowed again, still unknown
	// The issuer withdraws rsa-1. Past the refresh interval the next use
	// refetches; the key is gone from then on.
	srv.update(func(s *jwksServer) { s.body = jwksOf(t, "rsa-2") })
	clk.Advance(time.Hour)
	step(t, a, srv, clk, "rsa-1", "", 4)
	step(t, a, srv, clk, "rsa-1", rotor.EUnauthenticated, 4)
	step(t, a, srv, clk, "rsa-2", "", 4)
}

func TestJWTKeysUnavailable(t *testing.T) {
	t.Parallel()
	clk := newClock()
	foreign := with(saClaims(t0), map[string]any{"iss": "https://other.example"})
	tests := []struct {
		name   string
		server func(s *jwksServer)
		config func(c *JWTConfig)
		claims map[string]any
		want   rotor.ErrorCode
	}{
		{name: "ok/bearer-token", server: func(s *jwksServer) { s.bearer = "ca-token" },
			config: func(c *JWTConfig) { c.JWKSBearerTokenFile = writeFile(t, "token", []byte("ca-token\n")) }},
		{name: "fail/server-down", server: func(s *jwksServer) { s.Close() }, want: rotor.EAuthUnavailable},
		{name: "fail/server-error", server: func(s *jwksServer) { s.status = http.StatusServiceUnavailable },
			want: rotor.EAuthUnavailable},
		{name: "fail/not-a-jwks", server: func(s *jwksServer) { s.body = []byte("<html>login</html>") },
			want: rotor.EAuthUnavailable},
		{name: "fail/untrusted-server-certificate", config: func(c *JWTConfig) { c.JWKSCAFile = "" },
			want: rotor.EAuthUnavailable},
		{name: "fail/bearer-token-refused", server: func(s *jwksServer) { s.bearer = "ca-token" },
			config: func(c *JWTConfig) { c.JWKSBearerTokenFile = writeFile(t, "token", []byte("stale")) },
			want:   rotor.EAuthUnavailable},
		{name: "fail/foreign-issuer-refused-without-fetching", server: func(s *jwksServer) { s.Close() },
			claims: foreign, want: rotor.EUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t, jwksOf(t, "ec-256"))
			a := newURLJWT(t, srv, clk, tt.config)
			if tt.server != nil {
				srv.update(tt.server)
			}
			claims := tt.claims
			if claims == nil {
				claims = saClaims(t0)
			}
			tok := mint(t, "ec-256", "ec-256", jose.ES256, claims)
			caller, err := a.Authenticate(context.Background(), rotor.Credentials{BearerToken: tok})
			checkResult(t, caller, err, tt.want, NameJWT, shopWeb)
		})
	}
}

func TestJWTServerOutage(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, jwksOf(t, "ec-256"))
	clk := newClock()
	a := newURLJWT(t, srv, clk, nil)
	down := func(s *jwksServer) { s.status = http.StatusBadGateway }
	up := func(s *jwksServer) { s.status = 0 }

	srv.update(down)
	step(t, a, srv, clk, "ec-256", rotor.EAuthUnavailable, 1)
	step(t, a, srv, clk, "ec-256", rotor.EAuthUnavailable, 1) // no hammering a server that is down
	srv.update(up)
	clk.Advance(noKeysRetry) // with no keys at all, retried sooner than MinRefreshInterval
	step(t, a, srv, clk, "ec-256", "", 2)

	srv.update(down)
	clk.Advance(30 * time.Second)
	step(t, a, srv, clk, "rogue", rotor.EAuthUnavailable, 3) // could be a new key we cannot fetch
	step(t, a, srv, clk, "ec-256", "", 3)                    // cached keys keep working
	srv.update(up)
	clk.Advance(30 * time.Second)
	step(t, a, srv, clk, "rogue", rotor.EUnauthenticated, 4)
}

func TestJWTConcurrentUnknownKidFetchesOnce(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, jwksOf(t, "ec-256"))
	clk := newClock()
	a := newURLJWT(t, srv, clk, nil)
	tok := mint(t, "rogue", "rogue", jose.ES256, saClaims(t0))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := a.Authenticate(context.Background(), rotor.Credentials{BearerToken: tok})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if code := rotor.ErrorCodeOf(err); code != rotor.EUnauthenticated {
			t.Errorf("code = %q (%v), want %q", code, err, rotor.EUnauthenticated)
		}
	}
	if n := srv.fetches(); n != 1 {
		t.Errorf("JWKS fetches = %d, want 1", n)
	}
}

func TestJWTWaitHonoursContext(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, jwksOf(t, "ec-256"))
	release := make(chan struct{})
	srv.update(func(s *jwksServer) { s.block = release })
	a := newURLJWT(t, srv, newClock(), nil)
	tok := mint(t, "ec-256", "ec-256", jose.ES256, saClaims(t0))
	first := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(context.Background(), rotor.Credentials{BearerToken: tok})
		first <- err
	}()
	for srv.fetches() == 0 { // the first caller now holds the fetch
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := a.Authenticate(ctx, rotor.Credentials{BearerToken: tok})
	checkResult(t, rotor.Caller{}, err, rotor.EAuthUnavailable, NameJWT, shopWeb)
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first caller: %v", err)
	}
}
