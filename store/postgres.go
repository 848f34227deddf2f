package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/migrations"
)

// pgStore is the PostgreSQL store: a pgxpool sized for load, with pgx's
// default statement cache (every query is prepared once per connection), and
// audit records written by group commit.
type pgStore struct {
	auditLog
	pool *pgxpool.Pool
}

func openPostgres(ctx context.Context, rawURL string, opts Options) (*pgStore, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// pgx redacts the password from its parse errors.
		return nil, fmt.Errorf("store URL: %w", err)
	}
	cfg.MaxConns = int32(opts.MaxConns)
	// Connections are expensive for Postgres (a process each): keep the
	// writers' connections warm rather than reconnecting after idle spells.
	cfg.MinConns = int32(min(opts.Writers, opts.MaxConns))
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		// So operators can tell the CA's sessions apart in pg_stat_activity.
		cfg.ConnConfig.RuntimeParams["application_name"] = "rotor-ca"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s := &pgStore{pool: pool}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s.batch = newBatcher(opts.batchConfig(opts.Writers), s.commit)
	return s, nil
}

const pgInsertIssuance = `INSERT INTO issuances (serial, namespace, service_account, sans,
	key_algorithm, key_size, public_key_sha256, csr_sha256, not_before, not_after, issued_at,
	issuer_key_id, authenticator, token_subject, remote_addr, bundle_fingerprint, certificate)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`

const pgInsertRefusal = `INSERT INTO refusals (time, reason, detail, namespace, service_account,
	authenticator, remote_addr) VALUES ($1, $2, $3, $4, $5, $6, $7)`

const pgInsertRefusalSummary = `INSERT INTO refusal_summaries (source, first_time, last_time, count, reasons)
	VALUES ($1, $2, $3, $4, $5)`

// commit writes recs as one pipelined batch: one round trip, and one
// implicit transaction, so one fsync, for the lot.
func (s *pgStore) commit(ctx context.Context, recs []record) error {
	for attempt := 1; ; attempt++ {
		b := &pgx.Batch{}
		for _, r := range recs {
			if i := r.iss; i != nil {
				b.Queue(pgInsertIssuance, i.Serial, i.Identity.Namespace, i.Identity.ServiceAccount, i.SANs,
					i.KeyAlgorithm, i.KeySize, i.PublicKeySHA256, i.CSRSHA256, utc(i.NotBefore), utc(i.NotAfter),
					utc(i.IssuedAt), i.IssuerKeyID, i.Authenticator, i.TokenSubject, i.RemoteAddr,
					i.BundleFingerprint, i.Certificate)
				continue
			}
			if m := r.sum; m != nil {
				b.Queue(pgInsertRefusalSummary, m.Source, utc(m.First), utc(m.Last), m.Count, string(m.reasons))
				continue
			}
			f := r.ref
			b.Queue(pgInsertRefusal, utc(f.Time), string(f.Reason), f.Detail, f.Identity.Namespace,
				f.Identity.ServiceAccount, f.Authenticator, f.RemoteAddr)
		}
		err := s.pool.SendBatch(ctx, b).Close()
		// A connection the server closed while idle (a restart, a failover,
		// pg_terminate_backend) fails before anything was sent; another
		// connection may well work, and nothing can have been committed.
		if err != nil && attempt < 2 && pgconn.SafeToRetry(err) {
			continue
		}
		if err != nil {
			return s.unavailable(fmt.Errorf("commit %d audit records: %w", len(recs), err))
		}
		return nil
	}
}

// Issuance implements rotor.IssuanceFinder.
func (s *pgStore) Issuance(ctx context.Context, serial string) (*rotor.Issuance, error) {
	i := &rotor.Issuance{Serial: normalSerial(serial)}
	err := s.pool.QueryRow(ctx, `SELECT namespace, service_account, sans, key_algorithm, key_size,
		public_key_sha256, csr_sha256, not_before, not_after, issued_at, issuer_key_id, authenticator,
		token_subject, remote_addr, bundle_fingerprint, certificate FROM issuances WHERE serial = $1`,
		i.Serial).Scan(&i.Identity.Namespace, &i.Identity.ServiceAccount, &i.SANs, &i.KeyAlgorithm,
		&i.KeySize, &i.PublicKeySHA256, &i.CSRSHA256, &i.NotBefore, &i.NotAfter, &i.IssuedAt,
		&i.IssuerKeyID, &i.Authenticator, &i.TokenSubject, &i.RemoteAddr, &i.BundleFingerprint,
		&i.Certificate)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("certificate " + i.Serial)
	}
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("look up issuance %s: %w", i.Serial, err))
	}
	i.NotBefore, i.NotAfter, i.IssuedAt = i.NotBefore.UTC(), i.NotAfter.UTC(), i.IssuedAt.UTC()
	return i, nil
}

// CreateToken implements rotor.TokenStore. A hash already stored is
// EInvalid.
func (s *pgStore) CreateToken(ctx context.Context, t rotor.StaticToken) error {
	if err := checkToken(t); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO static_tokens (hash, namespace, service_account, created_at)
		VALUES ($1, $2, $3, $4)`, t.Hash, t.Identity.Namespace, t.Identity.ServiceAccount, utc(t.CreatedAt))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return errDuplicateToken(t)
	}
	if err != nil {
		return s.unavailable(fmt.Errorf("store token %s: %w", t.Subject(), err))
	}
	return nil
}

// LookupToken implements rotor.TokenStore.
func (s *pgStore) LookupToken(ctx context.Context, hash []byte) (rotor.StaticToken, error) {
	t := rotor.StaticToken{Hash: hash}
	err := s.pool.QueryRow(ctx, `SELECT namespace, service_account, created_at FROM static_tokens
		WHERE hash = $1`, hash).Scan(&t.Identity.Namespace, &t.Identity.ServiceAccount, &t.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return rotor.StaticToken{}, notFound("token")
	}
	if err != nil {
		return rotor.StaticToken{}, s.unavailable(fmt.Errorf("look up token: %w", err))
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return t, nil
}

// Ping implements rotor.Store: the database answers, accepts writes (not a
// standby) and carries a schema this binary can use.
func (s *pgStore) Ping(ctx context.Context) error {
	var version int64
	var dirty, standby bool
	err := s.pool.QueryRow(ctx, `SELECT version, dirty, pg_is_in_recovery() FROM schema_migrations`).
		Scan(&version, &dirty, &standby)
	if err != nil {
		return s.unavailable(fmt.Errorf("ping postgres (has `rotor-ca migrate` run?): %w", err))
	}
	if standby {
		return unavailable(errors.New("postgres is a read-only standby"))
	}
	return checkSchema(version, dirty, latestVersion(migrations.Postgres()))
}

// unavailable gives err the code EStoreUnavailable and, when it is a lost
// connection rather than a failed statement, drops every pooled connection:
// a restart, failover or network cut kills them all together, and the pool
// would otherwise find out one failed request per connection.
func (s *pgStore) unavailable(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	case errors.As(err, &pgErr) && pgErr.Severity != "FATAL" && pgErr.Severity != "PANIC":
	default:
		s.pool.Reset()
	}
	return unavailable(err)
}

// Close implements rotor.Store: it commits the records already submitted,
// then closes the pool.
func (s *pgStore) Close() error {
	s.batch.Close()
	s.pool.Close()
	return nil
}
