package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor"
)

// pgChainRow scans one row of a chained table, with its chain_seq and
// chain_hash last, into a chainRow.
type pgChainRow func(rows pgx.Rows) (chainRow, error)

// pgChainTables: for each chained table, its columns (place and hash
// last) and how to turn a row into a chainRow.
var pgChainTables = map[string]struct {
	cols string
	scan pgChainRow
}{
	kindIssuance: {issuanceColumns, func(rows pgx.Rows) (chainRow, error) {
		var i rotor.Issuance
		r := chainRow{kind: kindIssuance}
		var seq *int64
		if err := rows.Scan(append(pgIssuanceDest(&i), &seq, &r.hash)...); err != nil {
			return r, err
		}
		pgIssuanceDone(&i)
		r.key, r.seq, r.digest = i.Serial, deref(seq), issuanceDigest(&i)
		return r, nil
	}},
	kindRefusal: {`id, time, reason, detail, namespace, service_account, authenticator, remote_addr`,
		func(rows pgx.Rows) (chainRow, error) {
			var f rotor.Refusal
			var id int64
			var seq *int64
			r := chainRow{kind: kindRefusal}
			err := rows.Scan(&id, &f.Time, &f.Reason, &f.Detail, &f.Identity.Namespace, &f.Identity.ServiceAccount,
				&f.Authenticator, &f.RemoteAddr, &seq, &r.hash)
			r.key, r.seq, r.digest = strconv.FormatInt(id, 10), deref(seq), refusalDigest(&f)
			return r, err
		}},
	kindSummary: {`id, source, first_time, last_time, count, reasons`, func(rows pgx.Rows) (chainRow, error) {
		var m rotor.RefusalSummary
		var id int64
		var seq *int64
		var reasons []byte
		r := chainRow{kind: kindSummary}
		if err := rows.Scan(&id, &m.Source, &m.First, &m.Last, &m.Count, &reasons, &seq, &r.hash); err != nil {
			return r, err
		}
		r.key, r.seq = strconv.FormatInt(id, 10), deref(seq)
		r.digest = summaryDigestOf(&m, reasons)
		return r, nil
	}},
	kindRevocation: {`serial, revoked_at, reason, reason_code, actor, comment`, func(rows pgx.Rows) (chainRow, error) {
		var v rotor.Revocation
		var name string
		var seq *int64
		r := chainRow{kind: kindRevocation}
		err := rows.Scan(&v.Serial, &v.Time, &name, &v.Reason, &v.Actor, &v.Comment, &seq, &r.hash)
		r.key, r.seq, r.digest = v.Serial, deref(seq), revocationDigest(&v, name)
		return r, err
	}},
	kindAction: {`id, time, actor, actor_kind, remote_addr, action, target, reason, detail`,
		func(rows pgx.Rows) (chainRow, error) {
			var a rotor.AdminAction
			var id int64
			var seq *int64
			r := chainRow{kind: kindAction}
			err := rows.Scan(&id, &a.Time, &a.Actor.Name, &a.Actor.Kind, &a.Actor.RemoteAddr, &a.Action, &a.Target,
				&a.Reason, &a.Detail, &seq, &r.hash)
			r.key, r.seq, r.digest = strconv.FormatInt(id, 10), deref(seq), actionDigest(&a)
			return r, err
		}},
}

// keyArg is a row's key as its column's type.
func keyArg(key string, numeric bool) any {
	if !numeric {
		return key
	}
	id, _ := strconv.ParseInt(key, 10, 64) // keys of numeric columns were formatted from int64
	return id
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// summaryDigestOf digests a summary whose reasons are stored JSON; JSON
// that does not parse is digested as it is, so it cannot verify.
func summaryDigestOf(m *rotor.RefusalSummary, reasons []byte) digest {
	if err := json.Unmarshal(reasons, &m.Reasons); err != nil {
		m.Reasons = map[rotor.ErrorCode]int{"unparsable " + rotor.ErrorCode(reasons): 0}
	}
	return summaryDigest(m)
}

// pgSnapshot reads the chain in one repeatable-read transaction.
type pgSnapshot struct{ tx pgx.Tx }

func (p pgSnapshot) state(ctx context.Context) (chainState, error) {
	return pgChainState(ctx, p.tx)
}

func pgChainState(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (chainState, error) {
	var st chainState
	err := q.QueryRow(ctx, `SELECT seq, hash, sealed, base_seq, base_hash FROM audit_chain WHERE id = 1`).
		Scan(&st.head.seq, &st.head.hash, &st.sealed, &st.base.seq, &st.base.hash)
	if err != nil {
		return st, fmt.Errorf("read the audit chain head: %w", err)
	}
	return st, nil
}

func (p pgSnapshot) links(ctx context.Context, kind string, fn func(int64, []byte) error) error {
	rows, err := p.tx.Query(ctx, `SELECT chain_seq, chain_hash FROM `+kind+
		` WHERE chain_seq IS NOT NULL ORDER BY chain_seq`)
	if err != nil {
		return fmt.Errorf("read %s: %w", kind, err)
	}
	var seq int64
	var hash []byte
	_, err = pgx.ForEachRow(rows, []any{&seq, &hash}, func() error { return fn(seq, hash) })
	if err != nil {
		return fmt.Errorf("read %s: %w", kind, err)
	}
	return nil
}

func (p pgSnapshot) rows(ctx context.Context, kind string, fn func(chainRow) error) error {
	t := pgChainTables[kind]
	return pgScanChain(ctx, p.tx, `SELECT `+t.cols+`, chain_seq, chain_hash FROM `+kind+
		` ORDER BY chain_seq NULLS FIRST`, t.scan, fn)
}

func pgScanChain(ctx context.Context, tx pgx.Tx, query string, scan pgChainRow, fn func(chainRow) error) error {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return fmt.Errorf("read audit rows: %w", err)
	}
	defer rows.Close()
	return eachRow(rows, scan, fn)
}

// VerifyChain implements Store.VerifyChain.
func (s *pgStore) VerifyChain(ctx context.Context, cp *Checkpoint) (v *Verification, err error) {
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			v, err = verifyChain(ctx, pgSnapshot{tx}, cp)
			return err
		})
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("verify the audit chain: %w", err))
	}
	return v, nil
}

// sealLegacy implements backend.
func (s *pgStore) sealLegacy(ctx context.Context) error {
	return sealLegacy(ctx, s.sealBatch, s.unavailable)
}

func (s *pgStore) sealBatch(ctx context.Context) (done bool, err error) {
	err = s.inChain(ctx, func(ctx context.Context, tx pgx.Tx, b *pgx.Batch, head *chainHead) error {
		st, err := pgChainState(ctx, tx)
		if err != nil || st.sealed {
			done = true
			return err
		}
		n := 0
		for _, kind := range legacyKinds {
			t := pgChainTables[kind.kind]
			err := pgScanChain(ctx, tx, `SELECT `+t.cols+`, chain_seq, chain_hash FROM `+kind.kind+
				` WHERE chain_seq IS NULL ORDER BY `+kind.order+` LIMIT `+strconv.Itoa(sealBatch-n), t.scan,
				func(r chainRow) error {
					seq, hash := head.link(r.digest)
					b.Queue(`UPDATE `+kind.kind+` SET chain_seq = $1, chain_hash = $2 WHERE `+kind.key+` = $3`,
						seq, hash, keyArg(r.key, kind.numericKey))
					n++
					return nil
				})
			if err != nil {
				return err
			}
		}
		if n < sealBatch {
			b.Queue(`UPDATE audit_chain SET sealed = true WHERE id = 1`)
			done = true
		}
		return nil
	})
	return done, err
}

// ChainHead implements Store.ChainHead.
func (s *pgStore) ChainHead(ctx context.Context) (Checkpoint, error) {
	st, err := pgChainState(ctx, s.pool)
	if err != nil {
		return Checkpoint{}, s.unavailable(err)
	}
	return Checkpoint{Seq: st.head.seq, Hash: st.head.hash}, nil
}

// SaveCheckpoint implements Store.SaveCheckpoint.
func (s *pgStore) SaveCheckpoint(ctx context.Context, cp Checkpoint, signedAt time.Time, note []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, signed_at, note) VALUES ($1, $2, $3, $4)
		ON CONFLICT (seq) DO NOTHING`, cp.Seq, cp.Hash, utc(signedAt), string(note))
	if err != nil {
		return s.unavailable(fmt.Errorf("save audit checkpoint %d: %w", cp.Seq, err))
	}
	return nil
}

// LatestCheckpoint implements Store.LatestCheckpoint.
func (s *pgStore) LatestCheckpoint(ctx context.Context) (Checkpoint, []byte, error) {
	var cp Checkpoint
	var note string
	err := s.pool.QueryRow(ctx, `SELECT seq, hash, note FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).
		Scan(&cp.Seq, &cp.Hash, &note)
	if errors.Is(err, pgx.ErrNoRows) {
		return cp, nil, notFound("audit checkpoint")
	}
	if err != nil {
		return cp, nil, s.unavailable(fmt.Errorf("read the latest audit checkpoint: %w", err))
	}
	return cp, []byte(note), nil
}
