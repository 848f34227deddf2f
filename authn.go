package rotor

import (
	"context"
	"crypto/x509"
	"errors"
)

// Credentials is what a request carries to prove who it is. It never leaves
// the process and is never logged.
type Credentials struct {
	// BearerToken is the token from "Authorization: Bearer", or "".
	BearerToken string
	// PeerCertificates are the TLS client certificates as presented, leaf
	// first, not yet verified.
	PeerCertificates []*x509.Certificate
	// RemoteAddr is the peer's address, for the audit log.
	RemoteAddr string
	// Audience, if set, is whom a service-account token must be for, in
	// place of the audience the token authenticators are configured with:
	// Linkerd's proxies present tokens for identity.l5d.io.
	Audience string
}

// Caller is an authenticated requester.
type Caller struct {
	Identity Identity
	// Authenticator names the method that accepted it: "token", "jwt",
	// "tokenreview", "mtls".
	Authenticator string
	// Subject says which credential it was, without revealing it: a token's
	// hash prefix, a JWT's subject, a certificate's serial.
	Subject string
	// Credential is the first credential the caller's certificates descend
	// from: Subject for a token or JWT, and for an mTLS renewal that of the
	// certificate it presents. Issuances record it, so that a revoked
	// token stops the renewals it started.
	Credential string
	// Admin marks an admin credential (an admin token or certificate): it
	// may take admin actions and never gets a workload certificate.
	// Identity is zero for it; Name says who holds it (a token's name, a
	// certificate's subject).
	Admin bool
	Name  string
}

// Actor is the caller as the actor of an admin action.
func (c Caller) Actor(remoteAddr string) Actor {
	name := c.Subject
	if c.Name != "" {
		name = c.Name + " (" + c.Subject + ")"
	}
	return Actor{Name: name, Kind: c.Authenticator, RemoteAddr: remoteAddr}
}

// ErrNoCredentials is returned (possibly wrapped) by an Authenticator when the
// credentials carry nothing it understands, so the next one is tried.
var ErrNoCredentials = &Error{Code: EUnauthenticated, Message: "no credentials: send Authorization: Bearer <token> or a client certificate issued by this CA"}

// errTokenNotAccepted answers a bearer token that no configured
// authenticator recognises, e.g. a JWT when only static tokens are on.
var errTokenNotAccepted = &Error{Code: EUnauthenticated, Message: "the bearer token is not of a kind this CA accepts: use a token from \"rotor-ca token create\" or a service-account token the CA is configured for"}

// Authenticator turns credentials into a caller.
//
// Authenticate must be safe for concurrent use and honour ctx. It returns
// ErrNoCredentials when the credentials are not its kind, an *Error with code
// EUnauthenticated when they are its kind but wrong (expired, unknown, bad
// signature), and an *Error with an unavailable code (EAuthUnavailable,
// EStoreUnavailable) when it cannot decide now.
type Authenticator interface {
	Authenticate(ctx context.Context, cred Credentials) (Caller, error)
}

// Authenticators tries each authenticator in order and accepts the first
// caller one of them accepts. If none does, an outage outranks a rejection (so
// the client retries rather than gives up), and a rejection outranks "no
// credentials" (so the client hears why its credential was refused).
type Authenticators []Authenticator

// Authenticate implements Authenticator.
func (as Authenticators) Authenticate(ctx context.Context, cred Credentials) (Caller, error) {
	var rejected, unavailable error
	for _, a := range as {
		caller, err := a.Authenticate(ctx, cred)
		switch {
		case err == nil:
			return caller, nil
		case errors.Is(err, ErrNoCredentials):
		case ErrorCodeOf(err).Retryable():
			if unavailable == nil {
				unavailable = err
			}
		default:
			if rejected == nil {
				rejected = err
			}
		}
	}
	switch {
	case unavailable != nil:
		return Caller{}, unavailable
	case rejected != nil:
		return Caller{}, rejected
	case cred.BearerToken != "":
		return Caller{}, errTokenNotAccepted
	}
	return Caller{}, ErrNoCredentials
}
