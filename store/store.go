// Package store keeps Rotor's audit log and static tokens in PostgreSQL or
// SQLite: one rotor.Store behind one constructor, Open, that picks the
// backend from the URL scheme.
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
	"runtime"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// Options tunes a store. The zero value is sensible for both backends.
type Options struct {
	// Logger receives commit failures; nil means slog.Default().
	Logger *slog.Logger
	// Migrate applies the schema migrations before the store opens.
	Migrate bool
	// MaxConns caps the PostgreSQL pool. Zero means max(16, 4*GOMAXPROCS):
	// a pool that keeps too few connections makes Postgres fork a session
	// per request under load.
	MaxConns int
	// Writers is the number of PostgreSQL group-commit writers; zero means 2,
	// so one batch fills while the other commits. SQLite always has one
	// writer: it allows one at a time anyway.
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

// Open connects to the store named by rawURL:
//
//	postgres://user@host:5432/db?sslmode=verify-full   (or postgresql://)
//	sqlite://./rotor-data/rotor.db                     (relative path)
//	sqlite:///var/lib/rotor/rotor.db                   (absolute path)
//
// With opts.Migrate it first applies the schema migrations. The returned
// store is safe for concurrent use; Close it to flush pending records.
func Open(ctx context.Context, rawURL string, opts Options) (rotor.Store, error) {
	opts = opts.withDefaults()
	if opts.Migrate {
		if err := Migrate(ctx, rawURL); err != nil {
			return nil, err
		}
	}
	// Each case returns its own concrete type, never a typed nil inside the
	// interface: callers may compare the store with nil.
	scheme, _, _ := strings.Cut(rawURL, "://")
	switch scheme {
	case "postgres", "postgresql":
		s, err := openPostgres(ctx, rawURL, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	case "sqlite":
		path, err := sqlitePath(rawURL)
		if err != nil {
			return nil, err
		}
		s, err := openSQLite(ctx, path, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, errScheme(rawURL)
}

func errScheme(rawURL string) error {
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		scheme = "(none)"
	}
	return fmt.Errorf("store URL scheme %q is not supported: use postgres://, postgresql:// or sqlite://PATH", scheme)
}

// sqlitePath extracts the file path from sqlite://PATH. The URL is not
// parsed as a URL: in sqlite://./data/rotor.db the "." is part of a path,
// not a host.
func sqlitePath(rawURL string) (string, error) {
	path := strings.TrimPrefix(rawURL, "sqlite://")
	if path == "" || strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("store URL %q: want sqlite://PATH with a file path and no query", rawURL)
	}
	return path, nil
}

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

// checkToken rejects a token record the schema would refuse.
func checkToken(t rotor.StaticToken) error {
	if len(t.Hash) != 32 {
		return rotor.Errorf(rotor.EInvalid, "token hash must be 32 bytes (SHA-256), got %d", len(t.Hash))
	}
	return t.Identity.Validate()
}

func errDuplicateToken(t rotor.StaticToken) error {
	return rotor.Errorf(rotor.EInvalid, "token %s already exists", t.Subject())
}
