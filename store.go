package rotor

import (
	"context"
	"time"
)

// Issuance is the audit record of one issued certificate. It holds no secret:
// no token, no private key.
type Issuance struct {
	Serial          string // lowercase hex, no separators
	Identity        Identity
	SANs            []string // DNS names then URIs
	KeyAlgorithm    string   // "ECDSA", "Ed25519", "RSA"
	KeySize         int      // bits: curve size or modulus
	PublicKeySHA256 string
	CSRSHA256       string
	NotBefore       time.Time
	NotAfter        time.Time
	IssuedAt        time.Time
	IssuerKeyID     string // issuer's subject key ID, hex
	Authenticator   string
	TokenSubject    string
	RemoteAddr      string
	// BundleFingerprint is the fingerprint of the trust bundle the client
	// said it holds (header Rotor-Bundle-Fingerprint), or "".
	BundleFingerprint string
	// Certificate is the issued leaf, DER.
	Certificate []byte
}

// Refusal is the audit record of one refused issuance request.
type Refusal struct {
	Time          time.Time
	Reason        ErrorCode
	Detail        string   // the caller-safe message
	Identity      Identity // zero if unknown
	Authenticator string   // "" if none accepted the caller
	RemoteAddr    string
}

// AuditLog records decisions durably.
//
// The methods are safe for concurrent use and return only once the record
// is committed (implementations may commit concurrent records together).
// They return an *Error with EStoreUnavailable when the store cannot
// commit.
type AuditLog interface {
	RecordIssuance(ctx context.Context, iss *Issuance) error
	RecordRefusal(ctx context.Context, r *Refusal) error
	RecordRefusalSummary(ctx context.Context, s *RefusalSummary) error
}

// IssuanceFinder looks issuances up. Issuance returns ENotFound for an unknown
// serial.
type IssuanceFinder interface {
	Issuance(ctx context.Context, serial string) (*Issuance, error)
}

// TokenStore keeps static tokens. LookupToken returns ENotFound for an
// unknown hash; both return EStoreUnavailable when the store cannot answer.
type TokenStore interface {
	CreateToken(ctx context.Context, t StaticToken) error
	LookupToken(ctx context.Context, hash []byte) (StaticToken, error)
}

// Store is everything the CA keeps: one Postgres or SQLite database.
type Store interface {
	AuditLog
	IssuanceFinder
	TokenStore
	// Ping returns nil when the store can serve reads and writes.
	Ping(ctx context.Context) error
	Close() error
}
