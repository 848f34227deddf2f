package rotor

import (
	"context"
	"time"
)

// Issuance is the audit record of one issued certificate. It holds no secret:
// no token, no private key.
type Issuance struct {
	Serial          string    `json:"serial"` // lowercase hex, no separators
	Identity        Identity  `json:"identity"`
	SANs            []string  `json:"sans"`          // DNS names then URIs
	KeyAlgorithm    string    `json:"key_algorithm"` // "ECDSA", "Ed25519", "RSA"
	KeySize         int       `json:"key_size"`      // bits: curve size or modulus
	PublicKeySHA256 string    `json:"public_key_sha256"`
	CSRSHA256       string    `json:"csr_sha256"`
	NotBefore       time.Time `json:"not_before"`
	NotAfter        time.Time `json:"not_after"`
	IssuedAt        time.Time `json:"issued_at"`
	IssuerKeyID     string    `json:"issuer_key_id"` // issuer's subject key ID, hex
	Authenticator   string    `json:"authenticator"`
	TokenSubject    string    `json:"token_subject"`
	RemoteAddr      string    `json:"remote_addr"`
	// BundleFingerprint is the fingerprint of the trust bundle the client
	// said it holds (header Rotor-Bundle-Fingerprint), or "".
	BundleFingerprint string `json:"bundle_fingerprint,omitempty"`
	// Certificate is the issued leaf, DER.
	Certificate []byte `json:"-"`
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
// Both methods are safe for concurrent use and return only once the record is
// committed (implementations may commit concurrent records together). They
// return an *Error with EStoreUnavailable when the store cannot commit.
type AuditLog interface {
	RecordIssuance(ctx context.Context, iss *Issuance) error
	RecordRefusal(ctx context.Context, r *Refusal) error
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
