// Package store keeps Rotor's audit log and static tokens in PostgreSQL or
// SQLite: one Store behind one constructor, Open, that picks the backend
// from the URL scheme.
//
// Writes of audit records go through group commit (see batcher): concurrent
// RecordIssuance and RecordRefusal calls share one transaction, so the
// durable audit costs one fsync per batch rather than per certificate. The
// store decides nothing about who may get a certificate; that is the core's
// policy.
package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rotor-dev/rotor"
)

// Options tunes a store. The zero value is sensible for both backends.
type Options struct {
	// Logger receives commit failures; nil means slog.Default().
	Logger *slog.Logger
	// Registerer, if set, receives the store's metrics: the duration and
	// failures of each call by operation.
	Registerer prometheus.Registerer
	// Migrate applies the schema migrations before the store opens.
	Migrate bool
	// MaxConns caps the PostgreSQL pool. Zero means max(16, 4*GOMAXPROCS):
	// a pool that keeps too few connections makes Postgres fork a session
	// per request under load.
	MaxConns int
	// Writers is the number of PostgreSQL group-commit writers; zero means 2,
	// so one batch is ready to send the moment the other is committed.
	// SQLite always has one writer: it allows one at a time anyway.
	Writers int
	// MaxBatch caps the records committed in one transaction; zero means 256.
	MaxBatch int
	// CommitTimeout bounds one group commit; zero means 10s.
	CommitTimeout time.Duration
	// BusyTimeout is how long SQLite waits for another process's write lock
	// (say `rotor-ca token create` beside a serving CA); zero means 5s.
	BusyTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxConns <= 0 {
		o.MaxConns = max(16, 4*runtime.GOMAXPROCS(0))
	}
	if o.Writers <= 0 {
		o.Writers = 2
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 10 * time.Second
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	return o
}

func (o Options) batchConfig(writers int) batchConfig {
	return batchConfig{writers: writers, maxBatch: o.MaxBatch, timeout: o.CommitTimeout, log: o.Logger}
}

// Store is the audit store: one PostgreSQL or SQLite database, opened by
// Open. It implements rotor.Store, records the bundles the CA serves and
// reports how far a root has reached (RecordBundle, RootStatus). It is safe
// for concurrent use; Close it to flush pending records.
type Store struct {
	b       backend
	metrics *metrics // nil: not instrumented
	// nonceSwept is when StoreNonce last swept expired nonces, Unix ns.
	nonceSwept atomic.Int64
}

// backend is what each database implements; Store adds what both share.
type backend interface {
	rotor.AuditLog
	rotor.CertificateStore
	rotor.RevocationStore
	rotor.TokenStore
	rotor.AdminStore
	pruneBackend
	acmeBackend
	RecordBundle(ctx context.Context, b *rotor.Bundle, at time.Time) error
	RootStatus(ctx context.Context, root string) (*RootStatus, error)
	VerifyChain(ctx context.Context, cp *Checkpoint) (*Verification, error)
	ChainHead(ctx context.Context) (Checkpoint, error)
	SaveCheckpoint(ctx context.Context, cp Checkpoint, signedAt time.Time, note []byte) error
	LatestCheckpoint(ctx context.Context) (Checkpoint, []byte, error)
	sealLegacy(ctx context.Context) error
	Ping(ctx context.Context) error
	Close() error
}

// URL is a parsed store URL.
type URL struct {
	// Backend is "postgres" or "sqlite".
	Backend string
	// Raw is the URL as given; Path is a SQLite database's file path.
	Raw, Path string
}

// ParseURL checks a store URL:
//
//	postgres://user@host:5432/db?sslmode=verify-full   (or postgresql://)
//	sqlite://./rotor-data/rotor.db                     (relative path)
//	sqlite:///var/lib/rotor/rotor.db                   (absolute path)
//
// A SQLite URL is not parsed as a URL: in sqlite://./data/rotor.db the "."
// is part of a path, not a host.
func ParseURL(raw string) (URL, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	switch {
	case ok && (scheme == "postgres" || scheme == "postgresql"):
		return URL{Backend: "postgres", Raw: raw}, nil
	case ok && scheme == "sqlite":
		if rest == "" || strings.ContainsAny(rest, "?#") {
			return URL{}, fmt.Errorf("store URL %q: want sqlite://PATH with a file path and no query", raw)
		}
		return URL{Backend: "sqlite", Raw: raw, Path: rest}, nil
	}
	if !ok {
		scheme = "(none)"
	}
	return URL{}, fmt.Errorf("store URL scheme %q is not supported: use postgres://, postgresql:// or sqlite://PATH", scheme)
}

// makeDir creates a SQLite database's directory, mode 0700, if it is
// missing, so the first command run against a fresh data directory works.
func (u URL) makeDir() error {
	if u.Backend != "sqlite" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(u.Path), 0o700); err != nil {
		return fmt.Errorf("create store directory: %w", err)
	}
	return nil
}

// Open connects to the store named by rawURL (see ParseURL), creating a
// SQLite database's directory if it is missing. With opts.Migrate it first
// applies the schema migrations.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := u.makeDir(); err != nil {
		return nil, err
	}
	if opts.Migrate {
		if err := migrateURL(ctx, u); err != nil {
			return nil, err
		}
	}
	s := &Store{}
	if opts.Registerer != nil {
		s.metrics = newMetrics(opts.Registerer)
	}
	if u.Backend == "postgres" {
		s.b, err = openPostgres(ctx, u.Raw, opts)
	} else {
		s.b, err = openSQLite(ctx, u.Path, opts)
	}
	if err != nil {
		return nil, err
	}
	if err := s.b.sealLegacy(ctx); err != nil {
		s.b.Close()
		return nil, err
	}
	return s, nil
}

// RecordIssuance implements rotor.AuditLog.
func (s *Store) RecordIssuance(ctx context.Context, iss *rotor.Issuance) error {
	return s.metrics.time("record_issuance", func() error { return s.b.RecordIssuance(ctx, iss) })
}

// RecordRefusal implements rotor.AuditLog.
func (s *Store) RecordRefusal(ctx context.Context, r *rotor.Refusal) error {
	return s.metrics.time("record_refusal", func() error { return s.b.RecordRefusal(ctx, r) })
}

// RecordRefusalSummary implements rotor.AuditLog.
func (s *Store) RecordRefusalSummary(ctx context.Context, r *rotor.RefusalSummary) error {
	return s.metrics.time("record_refusal_summary", func() error { return s.b.RecordRefusalSummary(ctx, r) })
}

// Issuance implements rotor.IssuanceFinder.
func (s *Store) Issuance(ctx context.Context, serial string) (iss *rotor.Issuance, err error) {
	err = s.metrics.time("issuance", func() error {
		iss, err = s.b.Issuance(ctx, serial)
		return err
	})
	return iss, err
}

// CreateToken implements rotor.TokenStore.
func (s *Store) CreateToken(ctx context.Context, t rotor.StaticToken, a rotor.AdminAction) error {
	return s.metrics.time("create_token", func() error { return s.b.CreateToken(ctx, t, a) })
}

// LookupToken implements rotor.TokenStore.
func (s *Store) LookupToken(ctx context.Context, hash []byte) (rotor.StaticToken, error) {
	return timed(s.metrics, "lookup_token", func() (rotor.StaticToken, error) { return s.b.LookupToken(ctx, hash) })
}

// TokenBySubject implements rotor.TokenStore.
func (s *Store) TokenBySubject(ctx context.Context, subject string) (rotor.StaticToken, error) {
	return timed(s.metrics, "token_by_subject", func() (rotor.StaticToken, error) { return s.b.TokenBySubject(ctx, subject) })
}

// Tokens implements rotor.TokenStore.
func (s *Store) Tokens(ctx context.Context) ([]rotor.StaticToken, error) {
	return timed(s.metrics, "tokens", func() ([]rotor.StaticToken, error) { return s.b.Tokens(ctx) })
}

// RevokeToken implements rotor.TokenStore.
func (s *Store) RevokeToken(ctx context.Context, subject string, a rotor.AdminAction) (rotor.StaticToken, error) {
	return timed(s.metrics, "revoke_token", func() (rotor.StaticToken, error) { return s.b.RevokeToken(ctx, subject, a) })
}

// TouchToken implements rotor.TokenStore.
func (s *Store) TouchToken(ctx context.Context, hash []byte, at time.Time) error {
	return s.metrics.time("touch_token", func() error { return s.b.TouchToken(ctx, hash, at) })
}

// DenyIdentity implements rotor.AdminStore.
func (s *Store) DenyIdentity(ctx context.Context, d rotor.Denial, revoke bool, a rotor.AdminAction) ([]string, error) {
	if err := d.Identity.Validate(); err != nil {
		return nil, err
	}
	return timed(s.metrics, "deny_identity", func() ([]string, error) { return s.b.DenyIdentity(ctx, d, revoke, a) })
}

// AllowIdentity implements rotor.AdminStore.
func (s *Store) AllowIdentity(ctx context.Context, id rotor.Identity, a rotor.AdminAction) error {
	return s.metrics.time("allow_identity", func() error { return s.b.AllowIdentity(ctx, id, a) })
}

// RevokeCertificate implements rotor.AdminStore.
func (s *Store) RevokeCertificate(ctx context.Context, r rotor.Revocation, a rotor.AdminAction) error {
	if !rotor.IsLowerHex(normalSerial(r.Serial), 1, rotor.MaxSerialHex) {
		return rotor.Errorf(rotor.EInvalid, "serial %q is not hex", r.Serial)
	}
	return s.metrics.time("revoke_certificate", func() error { return s.b.RevokeCertificate(ctx, r, a) })
}

// DeniedIdentities implements rotor.AdminStore.
func (s *Store) DeniedIdentities(ctx context.Context) ([]rotor.Denial, error) {
	return timed(s.metrics, "denied_identities", func() ([]rotor.Denial, error) { return s.b.DeniedIdentities(ctx) })
}

// CertificateStatus implements rotor.CertificateStore.
func (s *Store) CertificateStatus(ctx context.Context, serial string) (*rotor.CertificateStatus, error) {
	return timed(s.metrics, "certificate_status", func() (*rotor.CertificateStatus, error) {
		return s.b.CertificateStatus(ctx, serial)
	})
}

// Issuances implements rotor.CertificateStore.
func (s *Store) Issuances(ctx context.Context, q rotor.IssuanceQuery) (*rotor.IssuancePage, error) {
	return timed(s.metrics, "issuances", func() (*rotor.IssuancePage, error) { return s.b.Issuances(ctx, q) })
}

// RecordBundle remembers which roots a trust bundle holds, so that the
// bundle fingerprints agents report with their issuances can be matched to
// roots; the CA records every bundle it serves. It is idempotent: recording
// a bundle again keeps its first time. It returns EStoreUnavailable when the
// store cannot commit.
func (s *Store) RecordBundle(ctx context.Context, b *rotor.Bundle, at time.Time) error {
	if err := checkFingerprint(b.Fingerprint); err != nil {
		return err
	}
	return s.metrics.time("record_bundle", func() error { return s.b.RecordBundle(ctx, b, at) })
}

// RootStatus says how far a root has reached the fleet: the signal that a
// root rotation may switch its issuer. It takes the root's fingerprint
// (rotor.Fingerprint); anything else is EInvalid. "Live" means not expired
// by the database's clock. It returns EStoreUnavailable when the store
// cannot answer.
func (s *Store) RootStatus(ctx context.Context, root string) (st *RootStatus, err error) {
	if err := checkFingerprint(root); err != nil {
		return nil, err
	}
	err = s.metrics.time("root_status", func() error {
		st, err = s.b.RootStatus(ctx, root)
		return err
	})
	return st, err
}

// VerifyChain recomputes the audit chain from the rows in one consistent
// snapshot and, with cp, checks that it passes through that checkpoint. A
// chain that is not intact is not an error: the result says what is wrong.
// Errors are the store's (EStoreUnavailable).
func (s *Store) VerifyChain(ctx context.Context, cp *Checkpoint) (v *Verification, err error) {
	err = s.metrics.time("verify_chain", func() error {
		v, err = s.b.VerifyChain(ctx, cp)
		return err
	})
	return v, err
}

// ChainHead is the audit chain's last place and hash: what a checkpoint
// signs.
func (s *Store) ChainHead(ctx context.Context) (cp Checkpoint, err error) {
	err = s.metrics.time("chain_head", func() error {
		cp, err = s.b.ChainHead(ctx)
		return err
	})
	return cp, err
}

// SaveCheckpoint keeps a signed checkpoint of the chain at cp; a second
// one for the same place (another replica's) is ignored.
func (s *Store) SaveCheckpoint(ctx context.Context, cp Checkpoint, signedAt time.Time, note []byte) error {
	return s.metrics.time("save_checkpoint", func() error { return s.b.SaveCheckpoint(ctx, cp, signedAt, note) })
}

// LatestCheckpoint is the newest signed checkpoint and its note;
// ENotFound before the first.
func (s *Store) LatestCheckpoint(ctx context.Context) (cp Checkpoint, note []byte, err error) {
	err = s.metrics.time("latest_checkpoint", func() error {
		cp, note, err = s.b.LatestCheckpoint(ctx)
		return err
	})
	return cp, note, err
}

// Ping returns nil when the store can serve reads and writes with a schema
// this binary can use.
func (s *Store) Ping(ctx context.Context) error { return s.b.Ping(ctx) }

// Close commits the records already submitted, then closes the database.
func (s *Store) Close() error { return s.b.Close() }

// issuanceColumns are the columns of an issuance, named alike on both
// backends, in the order the scanners take them.
const issuanceColumns = `serial, namespace, service_account, sans, key_algorithm, key_size,
	public_key_sha256, csr_sha256, not_before, not_after, issued_at, issuer_key_id, authenticator,
	token_subject, remote_addr, bundle_fingerprint, certificate, credential`

// notFound is the error for an absent row.
func notFound(what string) error {
	return rotor.Errorf(rotor.ENotFound, "%s not found", what)
}

// utc normalises a time for storage: UTC, and microseconds, the precision
// both backends keep, so a record reads back equal to what was written.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// normalSerial lowercases a serial for lookup: the schema stores lowercase
// hex, and people paste serials from tools that print uppercase.
func normalSerial(s string) string { return strings.ToLower(s) }

// checkFingerprint refuses anything but 64 lowercase hex digits.
func checkFingerprint(fp string) error {
	if !rotor.IsLowerHex(fp, 64, 64) {
		return rotor.Errorf(rotor.EInvalid, "fingerprint must be 64 lowercase hex digits (SHA-256)")
	}
	return nil
}

// checkToken rejects a token record the schema would refuse: a workload
// token has a valid identity, an admin token a name and no identity.
func checkToken(t rotor.StaticToken) error {
	if len(t.Hash) != 32 {
		return rotor.Errorf(rotor.EInvalid, "token hash must be 32 bytes (SHA-256), got %d", len(t.Hash))
	}
	if t.Admin {
		if t.Name == "" || t.Identity != (rotor.Identity{}) {
			return rotor.Errorf(rotor.EInvalid, "an admin token needs a name and no workload identity")
		}
		return nil
	}
	return t.Identity.Validate()
}

// tokenAction is the record of creating t.
func tokenAction(t rotor.StaticToken, a rotor.AdminAction) *rotor.AdminAction {
	a.Action, a.Target = rotor.ActionTokenCreate, t.Subject()
	switch {
	case t.Admin:
		a.Detail = "admin token for " + t.Name
	default:
		a.Detail = "workload token for " + t.Identity.String()
		if t.Name != "" {
			a.Detail += " (" + t.Name + ")"
		}
	}
	if !t.ExpiresAt.IsZero() {
		a.Detail += ", expires " + utc(t.ExpiresAt).Format(time.RFC3339)
	}
	return &a
}

// denyAction and friends complete an admin action's record.
func denyAction(d rotor.Denial, revoked []string, a rotor.AdminAction) *rotor.AdminAction {
	a.Action, a.Target = rotor.ActionDeny, d.Identity.String()
	if a.Reason == "" {
		a.Reason = d.Reason
	}
	if len(revoked) > 0 {
		a.Detail = fmt.Sprintf("revoked %d certificates: %s", len(revoked), strings.Join(revoked, " "))
	}
	return &a
}

func revokeAction(r rotor.Revocation, a rotor.AdminAction) *rotor.AdminAction {
	a.Action, a.Target = rotor.ActionRevoke, r.Serial
	if a.Reason == "" {
		a.Reason = r.Comment
	}
	a.Detail = "reason " + r.Reason.String()
	return &a
}

// liveRevocations are the revocations DenyIdentity makes of serials.
func liveRevocations(d rotor.Denial, serials []string) []rotor.Revocation {
	out := make([]rotor.Revocation, len(serials))
	for i, s := range serials {
		out[i] = rotor.Revocation{Serial: s, Time: d.Time, Reason: rotor.ReasonPrivilegeWithdrawn, Actor: d.Actor,
			Comment: "identity " + d.Identity.String() + " denied: " + d.Reason}
	}
	return out
}

func errNotRevocable(serial string) error {
	return rotor.Errorf(rotor.EConflict, "certificate %s is revoked already", serial)
}

func errDuplicateToken(t rotor.StaticToken) error {
	return rotor.Errorf(rotor.EInvalid, "token %s already exists", t.Subject())
}
