// Package authn holds Rotor's authenticators: static tokens kept in the
// store, Kubernetes service-account JWTs verified offline against a JWKS,
// Kubernetes TokenReview, and client certificates issued by this CA. Each
// implements rotor.Authenticator; rotor.Authenticators chains them.
package authn

import (
	"bytes"
	"context"
	"strings"

	"github.com/rotor-dev/rotor"
)

// Authenticator names recorded in rotor.Caller.Authenticator and in audit
// rows; they never change.
const (
	NameToken       = "token"
	NameJWT         = "jwt"
	NameTokenReview = "tokenreview"
	NameMTLS        = "mtls"
)

// StaticTokens accepts the static rotor_ tokens an operator created with
// rotor.NewStaticToken. Only the token's SHA-256 is stored and looked up, so
// no constant-time comparison is needed: an attacker cannot steer the hash.
//
// It is safe for concurrent use and honours ctx through the store.
type StaticTokens struct {
	store rotor.TokenStore
}

// NewStaticTokens returns an authenticator that looks tokens up in store.
func NewStaticTokens(store rotor.TokenStore) *StaticTokens {
	return &StaticTokens{store: store}
}

// Authenticate implements rotor.Authenticator. Bearer tokens without
// rotor.TokenPrefix are not its kind (rotor.ErrNoCredentials); an unknown
// token is EUnauthenticated; a store that cannot answer is EStoreUnavailable.
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
	if err := tok.Identity.Validate(); err != nil {
		return rotor.Caller{}, rotor.WrapError(rotor.EUnauthenticated, err, "static token has an invalid identity")
	}
	return rotor.Caller{Identity: tok.Identity, Authenticator: NameToken, Subject: tok.Subject()}, nil
}
