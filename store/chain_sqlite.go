package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rotor-dev/rotor"
)

// sqliteChainRow scans one row of a chained table, with its chain_seq and
// chain_hash last, into a chainRow.
type sqliteChainRow func(rows *sql.Rows) (chainRow, error)

// sqliteChainTables: for each chained table, its columns (place and hash
// last) and how to turn a row into a chainRow.
var sqliteChainTables = map[string]struct {
	cols string
	scan sqliteChainRow
}{
	kindIssuance: {issuanceColumns, func(rows *sql.Rows) (chainRow, error) {
		var sc sqliteIssuance
		var seq sql.NullInt64
		r := chainRow{kind: kindIssuance}
		err := rows.Scan(append(sc.dest(), &seq, &r.hash)...)
		if err == nil {
			err = sc.done()
		}
		r.key, r.seq, r.digest = sc.Serial, seq.Int64, issuanceDigest(&sc.Issuance)
		return r, err
	}},
	kindRefusal: {`id, time, reason, detail, namespace, service_account, authenticator, remote_addr`,
		func(rows *sql.Rows) (chainRow, error) {
			var f rotor.Refusal
			var id int64
			var at string
			var seq sql.NullInt64
			r := chainRow{kind: kindRefusal}
			err := rows.Scan(&id, &at, &f.Reason, &f.Detail, &f.Identity.Namespace, &f.Identity.ServiceAccount,
				&f.Authenticator, &f.RemoteAddr, &seq, &r.hash)
			err = errors.Join(err, parseTime(at, &f.Time))
			r.key, r.seq, r.digest = strconv.FormatInt(id, 10), seq.Int64, refusalDigest(&f)
			return r, err
		}},
	kindSummary: {`id, source, first_time, last_time, count, reasons`, func(rows *sql.Rows) (chainRow, error) {
		var m rotor.RefusalSummary
		var id int64
		var first, last, reasons string
		var seq sql.NullInt64
		r := chainRow{kind: kindSummary}
		err := rows.Scan(&id, &m.Source, &first, &last, &m.Count, &reasons, &seq, &r.hash)
		err = errors.Join(err, parseTime(first, &m.First), parseTime(last, &m.Last))
		r.key, r.seq, r.digest = strconv.FormatInt(id, 10), seq.Int64, summaryDigestOf(&m, []byte(reasons))
		return r, err
	}},
	kindRevocation: {`serial, revoked_at, reason, reason_code, actor, comment`, func(rows *sql.Rows) (chainRow, error) {
		var v rotor.Revocation
		var at, name string
		var seq sql.NullInt64
		r := chainRow{kind: kindRevocation}
		err := rows.Scan(&v.Serial, &at, &name, &v.Reason, &v.Actor, &v.Comment, &seq, &r.hash)
		err = errors.Join(err, parseTime(at, &v.Time))
		r.key, r.seq, r.digest = v.Serial, seq.Int64, revocationDigest(&v, name)
		return r, err
	}},
	kindAction: {`id, time, actor, actor_kind, remote_addr, action, target, reason, detail`,
		func(rows *sql.Rows) (chainRow, error) {
			var a rotor.AdminAction
			var id int64
			var at string
			var seq sql.NullInt64
			r := chainRow{kind: kindAction}
			err := rows.Scan(&id, &at, &a.Actor.Name, &a.Actor.Kind, &a.Actor.RemoteAddr, &a.Action, &a.Target,
				&a.Reason, &a.Detail, &seq, &r.hash)
			err = errors.Join(err, parseTime(at, &a.Time))
			r.key, r.seq, r.digest = strconv.FormatInt(id, 10), seq.Int64, actionDigest(&a)
			return r, err
		}},
}

// sqliteQuerier is what a *sql.DB and a *sql.Tx share.
type sqliteQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqliteSnapshot reads the chain in one read transaction.
type sqliteSnapshot struct{ tx sqliteQuerier }

func (p sqliteSnapshot) state(ctx context.Context) (chainState, error) {
	var st chainState
	err := p.tx.QueryRowContext(ctx, `SELECT seq, hash, sealed, base_seq, base_hash FROM audit_chain WHERE id = 1`).
		Scan(&st.head.seq, &st.head.hash, &st.sealed, &st.base.seq, &st.base.hash)
	if err != nil {
		return st, fmt.Errorf("read the audit chain head: %w", err)
	}
	return st, nil
}

func (p sqliteSnapshot) links(ctx context.Context, kind string, fn func(int64, []byte) error) error {
	rows, err := p.tx.QueryContext(ctx, `SELECT chain_seq, chain_hash FROM `+kind+
		` WHERE chain_seq IS NOT NULL ORDER BY chain_seq`)
	if err != nil {
		return fmt.Errorf("read %s: %w", kind, err)
	}
	defer rows.Close()
	var seq int64
	var hash []byte
	for rows.Next() {
		if err := rows.Scan(&seq, &hash); err != nil {
			return fmt.Errorf("read %s: %w", kind, err)
		}
		if err := fn(seq, hash); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (p sqliteSnapshot) rows(ctx context.Context, kind string, fn func(chainRow) error) error {
	t := sqliteChainTables[kind]
	// SQLite sorts NULLs first.
	return sqliteScanChain(ctx, p.tx, `SELECT `+t.cols+`, chain_seq, chain_hash FROM `+kind+
		` ORDER BY chain_seq`, t.scan, fn)
}

func sqliteScanChain(ctx context.Context, q sqliteQuerier, query string, scan sqliteChainRow, fn func(chainRow) error) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("read audit rows: %w", err)
	}
	defer rows.Close()
	return eachRow(rows, scan, fn)
}

// VerifyChain implements Store.VerifyChain.
func (s *sqliteStore) VerifyChain(ctx context.Context, cp *Checkpoint) (*Verification, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, unavailable(fmt.Errorf("verify the audit chain: %w", err))
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	v, err := verifyChain(ctx, sqliteSnapshot{tx}, cp)
	if err != nil {
		return nil, unavailable(fmt.Errorf("verify the audit chain: %w", err))
	}
	return v, nil
}

// sealLegacy implements backend.
func (s *sqliteStore) sealLegacy(ctx context.Context) error {
	return sealLegacy(ctx, s.sealBatch, unavailable)
}

func (s *sqliteStore) sealBatch(ctx context.Context) (done bool, err error) {
	err = s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		st, err := sqliteSnapshot{tx}.state(ctx)
		if err != nil || st.sealed {
			done = true
			return err
		}
		type place struct {
			seq  int64
			hash []byte
			key  any
		}
		n := 0
		for _, kind := range legacyKinds {
			t := sqliteChainTables[kind.kind]
			var places []place // updated once the query's rows are closed
			err := sqliteScanChain(ctx, tx, `SELECT `+t.cols+`, chain_seq, chain_hash FROM `+kind.kind+
				` WHERE chain_seq IS NULL ORDER BY `+kind.order+` LIMIT `+strconv.Itoa(sealBatch-n), t.scan,
				func(r chainRow) error {
					seq, hash := head.link(r.digest)
					places = append(places, place{seq, hash, keyArg(r.key, kind.numericKey)})
					return nil
				})
			if err != nil {
				return err
			}
			for _, p := range places {
				if _, err := tx.ExecContext(ctx, `UPDATE `+kind.kind+` SET chain_seq = ?, chain_hash = ? WHERE `+
					kind.key+` = ?`, p.seq, p.hash, p.key); err != nil {
					return err
				}
			}
			n += len(places)
		}
		if n < sealBatch {
			_, err := tx.ExecContext(ctx, `UPDATE audit_chain SET sealed = 1 WHERE id = 1`)
			done = true
			return err
		}
		return nil
	})
	return done, err
}

// ChainHead implements Store.ChainHead.
func (s *sqliteStore) ChainHead(ctx context.Context) (Checkpoint, error) {
	st, err := sqliteSnapshot{s.r}.state(ctx)
	if err != nil {
		return Checkpoint{}, unavailable(err)
	}
	return Checkpoint{Seq: st.head.seq, Hash: st.head.hash}, nil
}

// SaveCheckpoint implements Store.SaveCheckpoint.
func (s *sqliteStore) SaveCheckpoint(ctx context.Context, cp Checkpoint, signedAt time.Time, note []byte) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, hash, signed_at, note) VALUES (?, ?, ?, ?)
		ON CONFLICT (seq) DO NOTHING`, cp.Seq, cp.Hash, fmtTime(signedAt), string(note))
	if err != nil {
		return unavailable(fmt.Errorf("save audit checkpoint %d: %w", cp.Seq, err))
	}
	return nil
}

// LatestCheckpoint implements Store.LatestCheckpoint.
func (s *sqliteStore) LatestCheckpoint(ctx context.Context) (Checkpoint, []byte, error) {
	var cp Checkpoint
	var note string
	err := s.r.QueryRowContext(ctx, `SELECT seq, hash, note FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).
		Scan(&cp.Seq, &cp.Hash, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return cp, nil, notFound("audit checkpoint")
	}
	if err != nil {
		return cp, nil, unavailable(fmt.Errorf("read the latest audit checkpoint: %w", err))
	}
	return cp, []byte(note), nil
}
