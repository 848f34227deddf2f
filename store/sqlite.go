package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/migrations"
)

// sqliteStore is the SQLite store (modernc.org/sqlite, no cgo). SQLite
// allows one writer at a time, so it gets exactly one: a single connection
// owned by the group-commit batcher, which cannot contend with itself. Reads
// use a separate pool; in WAL mode they never wait for the writer. Another
// process (`rotor-ca token create`) may write the same file: it waits up to
// Options.BusyTimeout for the lock, as do we.
type sqliteStore struct {
	auditLog
	w      *sql.DB // one connection: the writer
	r      *sql.DB // readers, query_only
	insIss *sql.Stmt
	insRef *sql.Stmt
	insSum *sql.Stmt
}

const defaultBusyTimeout = 5 * time.Second

// sqliteTime is how times are stored: UTC in SQLite's own datetime layout,
// with a fraction only when there is one. Text order is then time order,
// and a stored time equals the datetime() of the same second, so operators
// can compare with datetime('now', '-1 hour') or '2026-11-27 10:00:00'.
const sqliteTime = "2006-01-02 15:04:05.999999"

// sqliteDSN configures every connection the same way. WAL lets readers run
// beside the writer; _txlock=immediate takes the write lock at BEGIN, where
// busy_timeout applies, instead of failing on upgrade mid-transaction.
// synchronous=FULL syncs the WAL at every commit, so a row reported
// committed survives power loss, which is the audit's promise; group commit
// is what keeps that affordable. (synchronous=NORMAL would be safe against
// process crashes only.)
func sqliteDSN(path string, busy time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return path + "?" + q.Encode()
}

func openSQLite(ctx context.Context, path string, opts Options) (_ *sqliteStore, err error) {
	s := &sqliteStore{}
	defer func() {
		if err != nil {
			s.closeDBs()
		}
	}()
	if s.w, err = sql.Open("sqlite", sqliteDSN(path, opts.BusyTimeout, false)); err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	if s.r, err = sql.Open("sqlite", sqliteDSN(path, opts.BusyTimeout, true)); err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	s.r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	if err = s.Ping(ctx); err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if s.insIss, err = s.w.PrepareContext(ctx, `INSERT INTO issuances (serial, namespace,
		service_account, sans, key_algorithm, key_size, public_key_sha256, csr_sha256, not_before,
		not_after, issued_at, issuer_key_id, authenticator, token_subject, remote_addr,
		bundle_fingerprint, certificate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`); err != nil {
		return nil, unavailable(fmt.Errorf("prepare: %w", err))
	}
	if s.insRef, err = s.w.PrepareContext(ctx, `INSERT INTO refusals (time, reason, detail, namespace,
		service_account, authenticator, remote_addr) VALUES (?, ?, ?, ?, ?, ?, ?)`); err != nil {
		return nil, unavailable(fmt.Errorf("prepare: %w", err))
	}
	if s.insSum, err = s.w.PrepareContext(ctx, `INSERT INTO refusal_summaries (source, first_time, last_time,
		count, reasons) VALUES (?, ?, ?, ?, ?)`); err != nil {
		return nil, unavailable(fmt.Errorf("prepare: %w", err))
	}
	s.batch = newBatcher(opts.batchConfig(1), s.commit)
	return s, nil
}

// commit writes recs in one transaction with the prepared statements.
func (s *sqliteStore) commit(ctx context.Context, recs []record) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	iss, ref, sum := tx.StmtContext(ctx, s.insIss), tx.StmtContext(ctx, s.insRef), tx.StmtContext(ctx, s.insSum)
	for _, r := range recs {
		if m := r.sum; m != nil {
			_, err = sum.ExecContext(ctx, m.Source, fmtTime(m.First), fmtTime(m.Last), m.Count, string(m.reasons))
		} else if i := r.iss; i != nil {
			sans, _ := json.Marshal(i.SANs) // []string cannot fail to marshal
			_, err = iss.ExecContext(ctx, i.Serial, i.Identity.Namespace, i.Identity.ServiceAccount,
				string(sans), i.KeyAlgorithm, i.KeySize, i.PublicKeySHA256, i.CSRSHA256,
				fmtTime(i.NotBefore), fmtTime(i.NotAfter), fmtTime(i.IssuedAt), i.IssuerKeyID,
				i.Authenticator, i.TokenSubject, i.RemoteAddr, i.BundleFingerprint, i.Certificate)
		} else {
			f := r.ref
			_, err = ref.ExecContext(ctx, fmtTime(f.Time), string(f.Reason), f.Detail,
				f.Identity.Namespace, f.Identity.ServiceAccount, f.Authenticator, f.RemoteAddr)
		}
		if err != nil {
			return fmt.Errorf("insert audit record: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit %d audit records: %w", len(recs), err)
	}
	return nil
}

// Issuance implements rotor.IssuanceFinder.
func (s *sqliteStore) Issuance(ctx context.Context, serial string) (*rotor.Issuance, error) {
	i := &rotor.Issuance{Serial: normalSerial(serial)}
	var sans, nb, na, at string
	err := s.r.QueryRowContext(ctx, `SELECT namespace, service_account, sans, key_algorithm, key_size,
		public_key_sha256, csr_sha256, not_before, not_after, issued_at, issuer_key_id, authenticator,
		token_subject, remote_addr, bundle_fingerprint, certificate FROM issuances WHERE serial = ?`,
		i.Serial).Scan(&i.Identity.Namespace, &i.Identity.ServiceAccount, &sans, &i.KeyAlgorithm,
		&i.KeySize, &i.PublicKeySHA256, &i.CSRSHA256, &nb, &na, &at, &i.IssuerKeyID,
		&i.Authenticator, &i.TokenSubject, &i.RemoteAddr, &i.BundleFingerprint, &i.Certificate)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("certificate " + i.Serial)
	}
	if err == nil {
		err = errors.Join(json.Unmarshal([]byte(sans), &i.SANs),
			parseTime(nb, &i.NotBefore), parseTime(na, &i.NotAfter), parseTime(at, &i.IssuedAt))
	}
	if err != nil {
		return nil, unavailable(fmt.Errorf("look up issuance %s: %w", i.Serial, err))
	}
	return i, nil
}

// CreateToken implements rotor.TokenStore. A hash already stored is
// EInvalid.
func (s *sqliteStore) CreateToken(ctx context.Context, t rotor.StaticToken) error {
	if err := checkToken(t); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO static_tokens (hash, namespace, service_account,
		created_at) VALUES (?, ?, ?, ?)`, t.Hash, t.Identity.Namespace, t.Identity.ServiceAccount,
		fmtTime(t.CreatedAt))
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) && sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return errDuplicateToken(t)
	}
	if err != nil {
		return unavailable(fmt.Errorf("store token %s: %w", t.Subject(), err))
	}
	return nil
}

// LookupToken implements rotor.TokenStore.
func (s *sqliteStore) LookupToken(ctx context.Context, hash []byte) (rotor.StaticToken, error) {
	t := rotor.StaticToken{Hash: hash}
	var created string
	err := s.r.QueryRowContext(ctx, `SELECT namespace, service_account, created_at FROM static_tokens
		WHERE hash = ?`, hash).Scan(&t.Identity.Namespace, &t.Identity.ServiceAccount, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return rotor.StaticToken{}, notFound("token")
	}
	if err == nil {
		err = parseTime(created, &t.CreatedAt)
	}
	if err != nil {
		return rotor.StaticToken{}, unavailable(fmt.Errorf("look up token: %w", err))
	}
	return t, nil
}

// Ping implements rotor.Store: it takes the write lock (so it fails while
// another process holds it past the busy timeout) and checks the schema.
func (s *sqliteStore) Ping(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(fmt.Errorf("ping sqlite: %w", err))
	}
	defer tx.Rollback() //nolint:errcheck // read-only transaction
	var version int64
	var dirty bool
	if err := tx.QueryRowContext(ctx, `SELECT version, dirty FROM schema_migrations`).Scan(&version, &dirty); err != nil {
		return unavailable(fmt.Errorf("ping sqlite (has `rotor-ca migrate` run?): %w", err))
	}
	return checkSchema(version, dirty, latestVersion(migrations.SQLite()))
}

// Close implements rotor.Store: it commits the records already submitted,
// then closes the database.
func (s *sqliteStore) Close() error {
	s.batch.Close()
	return s.closeDBs()
}

func (s *sqliteStore) closeDBs() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.insIss, s.insRef, s.insSum} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, db := range []*sql.DB{s.r, s.w} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

func fmtTime(t time.Time) string { return utc(t).Format(sqliteTime) }

func parseTime(s string, t *time.Time) (err error) {
	*t, err = time.ParseInLocation(sqliteTime, s, time.UTC)
	return err
}
