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
	w      *sql.DB           // one connection: the writer
	r      *sql.DB           // readers, query_only
	insIss map[int]*sql.Stmt // by row count: see issuanceGroups
	insRef *sql.Stmt
	insSum *sql.Stmt
}

const defaultBusyTimeout = 5 * time.Second

// sqliteLinger is the SQLite writer's batchConfig.linger. Each commit
// rewrites every index page it touches and syncs the WAL, and in-process
// under load batches were about 6 records.
const sqliteLinger = 500 * time.Microsecond

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
// process crashes only.) wal_autocheckpoint=10000 pages (40 MB of WAL at
// most between checkpoints) rather than 1000: the writer checkpoints inline,
// and each checkpoint copies back the same hot index pages, so at 1000 it
// took about a third of COMMIT's CPU; BenchmarkIssueInProcess/sqlite
// went from about 6,350 to 6,750 issued/s.
func sqliteDSN(path string, busy time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "wal_autocheckpoint(10000)")
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
	s.insIss = make(map[int]*sql.Stmt, len(issuanceGroups))
	for n, q := range insertIssuances(func(int) string { return "?" }) {
		if s.insIss[n], err = s.w.PrepareContext(ctx, q); err != nil {
			return nil, unavailable(fmt.Errorf("prepare: %w", err))
		}
	}
	if s.insRef, err = s.w.PrepareContext(ctx, `INSERT INTO refusals (time, reason, detail, namespace,
		service_account, authenticator, remote_addr, chain_seq, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`); err != nil {
		return nil, unavailable(fmt.Errorf("prepare: %w", err))
	}
	if s.insSum, err = s.w.PrepareContext(ctx, `INSERT INTO refusal_summaries (source, first_time, last_time,
		count, reasons, chain_seq, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?)`); err != nil {
		return nil, unavailable(fmt.Errorf("prepare: %w", err))
	}
	cfg := opts.batchConfig(1)
	cfg.linger = sqliteLinger
	s.batch = newBatcher(cfg, s.commit)
	return s, nil
}

// commit writes recs in one transaction with the prepared statements,
// taking their places in the chain; issuances in multi-row INSERTs.
func (s *sqliteStore) commit(ctx context.Context, recs []record) error {
	err := s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		ref, sum := tx.StmtContext(ctx, s.insRef), tx.StmtContext(ctx, s.insSum)
		var iss []any
		var err error
		for _, r := range recs {
			seq, hash := head.link(r.digest)
			if m := r.sum; m != nil {
				_, err = sum.ExecContext(ctx, m.Source, fmtTime(m.First), fmtTime(m.Last), m.Count, string(m.reasons),
					seq, hash)
			} else if i := r.iss; i != nil {
				sans, _ := json.Marshal(i.SANs) // []string cannot fail to marshal
				iss = append(iss, i.Serial, i.Identity.Namespace, i.Identity.ServiceAccount,
					string(sans), i.KeyAlgorithm, i.KeySize, i.PublicKeySHA256, i.CSRSHA256,
					fmtTime(i.NotBefore), fmtTime(i.NotAfter), fmtTime(i.IssuedAt), i.IssuerKeyID,
					i.Authenticator, i.TokenSubject, i.RemoteAddr, i.BundleFingerprint, i.Certificate, i.Credential,
					seq, hash)
			} else {
				f := r.ref
				_, err = ref.ExecContext(ctx, fmtTime(f.Time), string(f.Reason), f.Detail,
					f.Identity.Namespace, f.Identity.ServiceAccount, f.Authenticator, f.RemoteAddr, seq, hash)
			}
			if err != nil {
				return fmt.Errorf("insert audit record: %w", err)
			}
		}
		return inIssuanceGroups(iss, func(n int, args []any) error {
			if _, err := tx.StmtContext(ctx, s.insIss[n]).ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("insert %d issuances: %w", n, err)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("commit %d audit records: %w", len(recs), err)
	}
	return nil
}

// inChain runs one write transaction that appends rows to the audit chain:
// BEGIN IMMEDIATE already holds the database's write lock, so reading the
// head is taking the chain's turn. add reads what it needs in tx and
// writes its rows with places from head.link. A *rotor.Error from add is
// returned as it is.
func (s *sqliteStore) inChain(ctx context.Context, add func(context.Context, *sql.Tx, *chainHead) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	head := &chainHead{}
	if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_chain WHERE id = 1`).Scan(&head.seq, &head.hash); err != nil {
		return fmt.Errorf("read the audit chain head: %w", err)
	}
	if err := add(ctx, tx, head); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_chain SET seq = ?, hash = ? WHERE id = 1`, head.seq, head.hash); err != nil {
		return fmt.Errorf("advance the audit chain: %w", err)
	}
	return tx.Commit()
}

// Issuance implements rotor.IssuanceFinder.
func (s *sqliteStore) Issuance(ctx context.Context, serial string) (*rotor.Issuance, error) {
	serial = normalSerial(serial)
	var sc sqliteIssuance
	err := s.r.QueryRowContext(ctx, `SELECT `+issuanceColumns+` FROM issuances WHERE serial = ?`, serial).
		Scan(sc.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("certificate " + serial)
	}
	if err == nil {
		err = sc.done()
	}
	if err != nil {
		return nil, unavailable(fmt.Errorf("look up issuance %s: %w", serial, err))
	}
	return &sc.Issuance, nil
}

// sqliteIssuance scans issuanceColumns: SANs are JSON and times text.
type sqliteIssuance struct {
	rotor.Issuance
	sans, nb, na, at string
}

func (sc *sqliteIssuance) dest() []any {
	i := &sc.Issuance
	return []any{&i.Serial, &i.Identity.Namespace, &i.Identity.ServiceAccount, &sc.sans, &i.KeyAlgorithm,
		&i.KeySize, &i.PublicKeySHA256, &i.CSRSHA256, &sc.nb, &sc.na, &sc.at, &i.IssuerKeyID,
		&i.Authenticator, &i.TokenSubject, &i.RemoteAddr, &i.BundleFingerprint, &i.Certificate, &i.Credential}
}

func (sc *sqliteIssuance) done() error {
	i := &sc.Issuance
	return errors.Join(json.Unmarshal([]byte(sc.sans), &i.SANs),
		parseTime(sc.nb, &i.NotBefore), parseTime(sc.na, &i.NotAfter), parseTime(sc.at, &i.IssuedAt))
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
	stmts := []*sql.Stmt{s.insRef, s.insSum}
	for _, st := range s.insIss {
		stmts = append(stmts, st)
	}
	for _, st := range stmts {
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
