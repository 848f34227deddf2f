package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

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
	tip  chainTip
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

// pgInsertIssuances holds, by row count, the INSERT of that many issuances.
var pgInsertIssuances = insertIssuances(func(i int) string { return "$" + strconv.Itoa(i) })

const pgInsertRefusal = `INSERT INTO refusals (time, reason, detail, namespace, service_account,
	authenticator, remote_addr, chain_seq, chain_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

const pgInsertRefusalSummary = `INSERT INTO refusal_summaries (source, first_time, last_time, count, reasons,
	chain_seq, chain_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)`

// commit writes recs in one transaction that takes its turn in the chain:
// one lock for the lot, and one fsync. It first tries to append them to
// the head this process last wrote (see chainTip), which costs one round
// trip; when another writer has moved the head since, it locks the head
// and reads it, as every other chain writer does.
func (s *pgStore) commit(ctx context.Context, recs []record) error {
	done, err := s.appendAtTip(ctx, recs)
	if done {
		if err != nil {
			return s.unavailable(fmt.Errorf("commit %d audit records: %w", len(recs), err))
		}
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := s.inChain(ctx, func(_ context.Context, _ pgx.Tx, b *pgx.Batch, head *chainHead) error {
			queueRecords(b, recs, head)
			return nil
		})
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

// queueRecords queues the inserts of recs, linked onto head in order.
// Issuances go in multi-row INSERTs (see issuanceGroups); refusals are
// rare enough under load to go one by one.
func queueRecords(b *pgx.Batch, recs []record, head *chainHead) {
	var iss []any
	for _, r := range recs {
		seq, hash := head.link(r.digest)
		if i := r.iss; i != nil {
			iss = append(iss, i.Serial, i.Identity.Namespace, i.Identity.ServiceAccount, i.SANs,
				i.KeyAlgorithm, i.KeySize, i.PublicKeySHA256, i.CSRSHA256, utc(i.NotBefore), utc(i.NotAfter),
				utc(i.IssuedAt), i.IssuerKeyID, i.Authenticator, i.TokenSubject, i.RemoteAddr,
				i.BundleFingerprint, i.Certificate, i.Credential, seq, hash)
			continue
		}
		if m := r.sum; m != nil {
			b.Queue(pgInsertRefusalSummary, m.Source, utc(m.First), utc(m.Last), m.Count, string(m.reasons), seq, hash)
			continue
		}
		f := r.ref
		b.Queue(pgInsertRefusal, utc(f.Time), string(f.Reason), f.Detail, f.Identity.Namespace,
			f.Identity.ServiceAccount, f.Authenticator, f.RemoteAddr, seq, hash)
	}
	_ = inIssuanceGroups(iss, func(n int, args []any) error {
		b.Queue(pgInsertIssuances[n], args...)
		return nil
	})
}

// inChain runs one transaction that appends rows to the audit chain. It
// locks the chain's head (the one row of audit_chain), lets add read what
// it needs in tx and queue its writes, each with a place from head.link,
// then sends them with the new head in one round trip and commits. A
// *rotor.Error from add is returned as it is.
func (s *pgStore) inChain(ctx context.Context, add func(context.Context, pgx.Tx, *pgx.Batch, *chainHead) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	head := &chainHead{}
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_chain WHERE id = 1 FOR UPDATE`).
		Scan(&head.seq, &head.hash); err != nil {
		return fmt.Errorf("lock the audit chain: %w", err)
	}
	b := &pgx.Batch{}
	if err := add(ctx, tx, b, head); err != nil {
		return err
	}
	b.Queue(`UPDATE audit_chain SET seq = $1, hash = $2 WHERE id = 1`, head.seq, head.hash)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	s.tip.settle(*head)
	return nil
}

// Issuance implements rotor.IssuanceFinder.
func (s *pgStore) Issuance(ctx context.Context, serial string) (*rotor.Issuance, error) {
	serial = normalSerial(serial)
	i := &rotor.Issuance{}
	err := s.pool.QueryRow(ctx, `SELECT `+issuanceColumns+` FROM issuances WHERE serial = $1`, serial).
		Scan(pgIssuanceDest(i)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("certificate " + serial)
	}
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("look up issuance %s: %w", serial, err))
	}
	pgIssuanceDone(i)
	return i, nil
}

// pgIssuanceDest are the scan destinations of issuanceColumns.
func pgIssuanceDest(i *rotor.Issuance) []any {
	return []any{&i.Serial, &i.Identity.Namespace, &i.Identity.ServiceAccount, &i.SANs, &i.KeyAlgorithm,
		&i.KeySize, &i.PublicKeySHA256, &i.CSRSHA256, &i.NotBefore, &i.NotAfter, &i.IssuedAt,
		&i.IssuerKeyID, &i.Authenticator, &i.TokenSubject, &i.RemoteAddr, &i.BundleFingerprint,
		&i.Certificate, &i.Credential}
}

func pgIssuanceDone(i *rotor.Issuance) {
	i.NotBefore, i.NotAfter, i.IssuedAt = i.NotBefore.UTC(), i.NotAfter.UTC(), i.IssuedAt.UTC()
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
