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
	// Credential is the first credential this certificate descends from
	// (Caller.Credential): revoking it stops the renewals it started.
	Credential string
	RemoteAddr string
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

// CertificateStatus is what the store knows about one certificate: its
// audit row and, if it was revoked, the revocation.
type CertificateStatus struct {
	Issuance   *Issuance
	Revocation *Revocation // nil if not revoked
}

// IssuanceQuery selects issuances for an admin's list, newest first. Zero
// fields select everything.
type IssuanceQuery struct {
	Namespace      string
	ServiceAccount string // only with Namespace
	// Active selects only certificates not expired at Now and not revoked.
	Active bool
	Now    time.Time
	// Limit caps the page (1 to MaxPage); After continues from a page's
	// Next cursor.
	Limit int
	After string
}

// MaxPage caps IssuanceQuery.Limit.
const MaxPage = 1000

// IssuancePage is one page of an IssuanceQuery. Next is the cursor of the
// following page, "" after the last. Issuances written while a client
// pages are newer than every cursor, so they never shift a later page.
type IssuancePage struct {
	Issuances []*Issuance
	Next      string
}

// CertificateStore answers questions about issued certificates.
type CertificateStore interface {
	IssuanceFinder
	// CertificateStatus returns ENotFound for an unknown serial.
	CertificateStatus(ctx context.Context, serial string) (*CertificateStatus, error)
	// Issuances lists a page; a malformed cursor is EInvalid.
	Issuances(ctx context.Context, q IssuanceQuery) (*IssuancePage, error)
}

// TokenStore keeps static tokens. Lookups return ENotFound for a token
// not stored; every method returns EStoreUnavailable when the store cannot
// answer. Creating and revoking tokens are admin actions, each committed
// with a.
type TokenStore interface {
	// CreateToken stores t (a hash already stored is EInvalid).
	CreateToken(ctx context.Context, t StaticToken, a AdminAction) error
	LookupToken(ctx context.Context, hash []byte) (StaticToken, error)
	// TokenBySubject finds a token by its Subject, token:<12 hex digits>.
	TokenBySubject(ctx context.Context, subject string) (StaticToken, error)
	// Tokens lists every token, oldest first.
	Tokens(ctx context.Context) ([]StaticToken, error)
	// RevokeToken revokes the token with subject at a.Time (EConflict if
	// revoked already) and returns it.
	RevokeToken(ctx context.Context, subject string, a AdminAction) (StaticToken, error)
	// TouchToken records that the token authenticated at about at.
	TouchToken(ctx context.Context, hash []byte, at time.Time) error
}

// RevocationStore reads what a CRL lists. Its methods are safe for
// concurrent use and return EStoreUnavailable when the store cannot answer.
type RevocationStore interface {
	// Revocations lists, in serial order and with their version, the
	// revocations of the certificates issued by the key whose subject key
	// ID is issuerKeyID (hex, as Issuance.IssuerKeyID) that are valid
	// after since, so that an expired certificate drops off. A key ID that
	// is not lowercase hex is EInvalid.
	Revocations(ctx context.Context, issuerKeyID string, since time.Time) (*RevocationList, error)
	// RevocationHead is the audit-chain place of the newest revocation of
	// any certificate, 0 for none. Every revocation raises it, so a cache
	// of Revocations for a fixed since is current while it stays put; it
	// costs an index lookup where Revocations reads every revocation.
	RevocationHead(ctx context.Context) (int64, error)
}

// Store is everything the CA keeps: one Postgres or SQLite database.
type Store interface {
	AuditLog
	CertificateStore
	RevocationStore
	TokenStore
	AdminStore
	// Ping returns nil when the store can serve reads and writes.
	Ping(ctx context.Context) error
	Close() error
}
