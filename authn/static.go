// Package authn holds Rotor's authenticators: static tokens kept in the
// store, Kubernetes service-account JWTs verified offline against a JWKS,
// Kubernetes TokenReview, and client certificates issued by this CA. Each
// implements rotor.Authenticator; rotor.Authenticators chains them.
package authn

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
)

// Authenticator names recorded in rotor.Caller.Authenticator and in audit
// rows; they never change.
const (
	NameToken       = "token"
	NameJWT         = "jwt"
	NameTokenReview = "tokenreview"
	NameMTLS        = "mtls"
	NameAdminMTLS   = "admin-mtls"
)

// StaticTokens accepts the static rotor_ tokens an operator created with
// rotor.NewStaticToken or rotor.NewAdminToken. Only the token's SHA-256 is
// stored and looked up, so no constant-time comparison is needed: an
// attacker cannot steer the hash. Given a TokenCache as its store (as
// NewChain does with ChainConfig.Fresh), a token revoked on any replica
// fails on all of them within the cache's freshness.
//
// It is safe for concurrent use and honours ctx through the store.
type StaticTokens struct {
	store rotor.TokenStore
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	touched map[string]time.Time // by hash: when last_used_at was last written
}

// touchEvery bounds the writes that keep a token's last use: one a minute.
const touchEvery = time.Minute

// NewStaticTokens returns an authenticator that looks tokens up in store.
// now nil means time.Now, log nil slog.Default().
func NewStaticTokens(store rotor.TokenStore, now func() time.Time, log *slog.Logger) *StaticTokens {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &StaticTokens{store: store, now: now, log: log, touched: map[string]time.Time{}}
}

// Authenticate implements rotor.Authenticator. Bearer tokens without
// rotor.TokenPrefix are not its kind (rotor.ErrNoCredentials); an unknown,
// revoked or expired token is EUnauthenticated; a store that cannot answer
// is EStoreUnavailable. An admin token gives an admin caller.
func (s *StaticTokens) Authenticate(ctx context.Context, cred rotor.Credentials) (rotor.Caller, error) {
	if !strings.HasPrefix(cred.BearerToken, rotor.TokenPrefix) {
		return rotor.Caller{}, rotor.ErrNoCredentials
	}
	hash := rotor.HashToken(cred.BearerToken)
	tok, err := s.store.LookupToken(ctx, hash)
	switch code := rotor.ErrorCodeOf(err); {
	case err == nil:
	case code == rotor.ENotFound:
		return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "unknown or revoked static token")
	case code == rotor.EStoreUnavailable:
		return rotor.Caller{}, err
	default:
		// A store that breaks its contract is still an outage to the
		// caller, never a reason to let the request through.
		return rotor.Caller{}, rotor.WrapError(rotor.EStoreUnavailable, err, "token store cannot answer; retry later")
	}
	// The store answered by hash; checking it echoes the hash guards against
	// a store bug handing back someone else's identity.
	if !bytes.Equal(tok.Hash, hash) {
		return rotor.Caller{}, rotor.Errorf(rotor.EInternal, "token store returned a different token")
	}
	now := s.now()
	if err := tok.Usable(now); err != nil {
		return rotor.Caller{}, err
	}
	s.touch(hash, now)
	if tok.Admin {
		return rotor.Caller{Admin: true, Name: tok.Name, Authenticator: NameToken, Subject: tok.Subject()}, nil
	}
	if err := tok.Identity.Validate(); err != nil {
		return rotor.Caller{}, rotor.WrapError(rotor.EUnauthenticated, err, "static token has an invalid identity")
	}
	return rotor.Caller{Identity: tok.Identity, Authenticator: NameToken, Subject: tok.Subject(), Name: tok.Name}, nil
}

// touch records the token's use in the background, at most once a minute
// per token: the answer never waits for it, and a failure costs only the
// freshness of token list's LAST USED.
func (s *StaticTokens) touch(hash []byte, now time.Time) {
	key := string(hash)
	s.mu.Lock()
	last, ok := s.touched[key]
	due := !ok || now.Sub(last) >= touchEvery
	if due {
		s.touched[key] = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.store.TouchToken(ctx, hash, now); err != nil {
			s.log.Debug("could not record a token's use", "error", err)
		}
	}()
}
