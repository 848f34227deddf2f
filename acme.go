package rotor

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"
)

// ACME (RFC 8555) with External Account Binding: an EAB key, made by an
// operator for one identity, binds the first ACME account that proves it
// holds the key to that identity. The account then orders certificates for
// that identity's names only, and each is the same audited issuance as
// POST /v1/certificates. The JOSE and HTTP side lives in package acme; what
// is decided (who may bind, order, be issued and revoke) lives here.

// AuthenticatorACME is the Authenticator of every issuance and refusal
// made for an ACME account.
const AuthenticatorACME = "acme"

// EABKeyPrefix starts every EAB key ID, so one is recognisable in logs.
const EABKeyPrefix = "eab_"

// EABKey is an External Account Binding key. The CA must keep the HMAC key
// to verify a binding, so it is kept only until an account binds (or the
// key is revoked), then erased: HMAC is nil from then on, and in every
// listing.
type EABKey struct {
	KeyID    string
	HMAC     []byte
	Identity Identity
	// CreatedAt is when it was made; ExpiresAt, BoundAt and RevokedAt are
	// zero for never (or not yet).
	CreatedAt, ExpiresAt, BoundAt, RevokedAt time.Time
	// AccountID is the account it bound, "" before.
	AccountID string
}

// Usable reports why k may not bind an account at now: spent, revoked or
// expired (EUnauthenticated), or nil.
func (k EABKey) Usable(now time.Time) error {
	switch {
	case !k.BoundAt.IsZero():
		return Errorf(EUnauthenticated, "EAB key %s was used already: each key binds one account", k.KeyID)
	case !k.RevokedAt.IsZero():
		return Errorf(EUnauthenticated, "EAB key %s was revoked", k.KeyID)
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return Errorf(EUnauthenticated, "EAB key %s has expired", k.KeyID)
	case len(k.HMAC) == 0:
		return Errorf(EUnauthenticated, "EAB key %s has no HMAC key left", k.KeyID)
	}
	return nil
}

// State is "active", "bound", "revoked" or "expired" at now, as eab list
// prints it.
func (k EABKey) State(now time.Time) string {
	switch {
	case !k.BoundAt.IsZero():
		return "bound"
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}

// NewEABKey makes an EAB key for id, valid for lifetime (zero: until used
// or revoked): a random key ID and a 256-bit HMAC key, to show once.
func NewEABKey(random io.Reader, id Identity, lifetime time.Duration, now time.Time) (EABKey, error) {
	if err := id.Validate(); err != nil {
		return EABKey{}, err
	}
	if lifetime < 0 {
		return EABKey{}, Errorf(EInvalid, "an EAB key's lifetime must not be negative")
	}
	kid, err := RandomID(random, 12)
	if err != nil {
		return EABKey{}, err
	}
	mac := make([]byte, 32)
	if _, err := io.ReadFull(orRand(random), mac); err != nil {
		return EABKey{}, fmt.Errorf("generate EAB HMAC key: %w", err)
	}
	k := EABKey{KeyID: EABKeyPrefix + kid, HMAC: mac, Identity: id, CreatedAt: now.UTC()}
	if lifetime > 0 {
		k.ExpiresAt = k.CreatedAt.Add(lifetime)
	}
	return k, nil
}

// ValidEABKeyID reports whether kid has the form NewEABKey gives.
func ValidEABKeyID(kid string) bool {
	rest, ok := strings.CutPrefix(kid, EABKeyPrefix)
	return ok && len(rest) == 16 && isBase64URL(rest)
}

// RandomID is n random bytes, base64url without padding: ACME account,
// order and nonce IDs, safe in a URL path.
func RandomID(random io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(orRand(random), b); err != nil {
		return "", WrapError(EInternal, err, "could not generate an identifier")
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func orRand(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

func isBase64URL(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// ACME account and order statuses (RFC 8555 7.1.6) Rotor uses: orders are
// ready at once (the binding proved the identity), processing while one
// finalize issues, then valid; never pending or invalid.
const (
	ACMEStatusValid       = "valid"
	ACMEStatusDeactivated = "deactivated"
	ACMEStatusReady       = "ready"
	ACMEStatusProcessing  = "processing"
)

// ACMEAccount is an ACME account, bound to one identity by its EAB key.
type ACMEAccount struct {
	ID string
	// Key is the account's public key as a JWK (JSON), KeyThumbprint its
	// RFC 7638 SHA-256 thumbprint, base64url: one account per key.
	Key           []byte
	KeyThumbprint string
	Identity      Identity
	EABKeyID      string
	Status        string
	CreatedAt     time.Time
}

// Subject names the account in audit rows (Caller.Subject).
func (a ACMEAccount) Subject() string { return "acme-account:" + a.ID }

// ACMEOrder is an ACME order. Its one authorization and challenge are
// valid from the start, since the account binding proved the identity, so
// an order is "ready" until finalized, then "valid" with the certificate's
// serial.
type ACMEOrder struct {
	ID, AccountID string
	DNSNames      []string
	Status        string
	CreatedAt     time.Time
	Expires       time.Time
	// Serial is the certificate's once the order is valid.
	Serial string
	// Replaces is the serial of the certificate this order replaces
	// (RFC 9773 "replaces"), or "".
	Replaces string
}

// ACMEStore keeps ACME's state. Methods are safe for concurrent use,
// honour ctx, return ENotFound for what is not stored and EStoreUnavailable
// when the store cannot answer.
type ACMEStore interface {
	EABStore
	ACMEAccountStore
	ACMEOrderStore
	CertificateStore
}

// EABStore keeps EAB keys; creating and revoking one are admin actions,
// each committed with a.
type EABStore interface {
	CreateEABKey(ctx context.Context, k EABKey, a AdminAction) error
	// EABKey returns the key with its HMAC if it has one left.
	EABKey(ctx context.Context, kid string) (EABKey, error)
	// EABKeys lists every key, oldest first, without HMACs.
	EABKeys(ctx context.Context) ([]EABKey, error)
	// RevokeEABKey revokes and erases an unbound key (EConflict if bound or
	// revoked already).
	RevokeEABKey(ctx context.Context, kid string, a AdminAction) (EABKey, error)
}

// ACMEAccountStore keeps ACME accounts.
type ACMEAccountStore interface {
	// BindACMEAccount stores acct and, in the same transaction, spends its
	// EAB key (erasing the HMAC) and records a: EConflict if the key was
	// spent or revoked meanwhile, or the account key is bound already.
	BindACMEAccount(ctx context.Context, acct ACMEAccount, a AdminAction) error
	ACMEAccount(ctx context.Context, id string) (ACMEAccount, error)
	ACMEAccountByKey(ctx context.Context, thumbprint string) (ACMEAccount, error)
	// UpdateACMEAccount writes acct's Key, KeyThumbprint and Status with
	// the record a (EConflict if the new key belongs to another account).
	UpdateACMEAccount(ctx context.Context, acct ACMEAccount, a AdminAction) error
}

// ACMEOrderStore keeps ACME orders and nonces.
type ACMEOrderStore interface {
	// CreateACMEOrder stores o (EConflict if o.Replaces was replaced by
	// another order already).
	CreateACMEOrder(ctx context.Context, o ACMEOrder) error
	ACMEOrder(ctx context.Context, id string) (ACMEOrder, error)
	// MoveACMEOrder moves order id from status from to status to, setting
	// its serial unless serial is "" (EConflict if it is not in from), so
	// one finalize at a time can claim a ready order.
	MoveACMEOrder(ctx context.Context, id, from, to, serial string) error
	// StoreNonce keeps a fresh nonce until expires (and, from time to
	// time, drops those expired at now); UseNonce takes it,
	// once, across every replica sharing the store: ENotFound if unknown,
	// used or expired at now.
	StoreNonce(ctx context.Context, nonce string, now, expires time.Time) error
	UseNonce(ctx context.Context, nonce string, now time.Time) error
}
