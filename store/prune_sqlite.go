package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// sqliteEligible is pruneEligible with the cutoff as ?1.
func sqliteEligible(kind string) string {
	return strings.ReplaceAll(pruneEligible[kind], ":before", "?1")
}

// pruneRange implements pruneBackend.
func (s *sqliteStore) pruneRange(ctx context.Context, before time.Time) (base, end int64, err error) {
	var st chainState
	err = s.r.QueryRowContext(ctx, `SELECT seq, base_seq FROM audit_chain WHERE id = 1`).Scan(&st.head.seq, &st.base.seq)
	if err != nil {
		return 0, 0, unavailable(fmt.Errorf("read the audit chain head: %w", err))
	}
	end = st.head.seq
	for _, kind := range chainKinds {
		var first sql.NullInt64
		err := s.r.QueryRowContext(ctx, `SELECT min(chain_seq) FROM `+kind+` WHERE chain_seq > ?2 AND NOT (`+
			sqliteEligible(kind)+`)`, fmtTime(before), st.base.seq).Scan(&first)
		if err != nil {
			return 0, 0, unavailable(fmt.Errorf("find the rows %s keeps: %w", kind, err))
		}
		if first.Valid {
			end = min(end, first.Int64-1)
		}
	}
	return st.base.seq, end, nil
}

// pruneCount implements pruneBackend.
func (s *sqliteStore) pruneCount(ctx context.Context, from, to int64) (map[string]int64, error) {
	counts := map[string]int64{}
	for _, kind := range chainKinds {
		var n int64
		err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+kind+` WHERE chain_seq > ? AND chain_seq <= ?`,
			from, to).Scan(&n)
		if err != nil {
			return nil, unavailable(fmt.Errorf("count %s to prune: %w", kind, err))
		}
		counts[kind] = n
	}
	return counts, nil
}

// pruneBatch implements pruneBackend.
func (s *sqliteStore) pruneBatch(ctx context.Context, from, to int64, a *rotor.AdminAction) (map[string]int64, error) {
	counts := map[string]int64{}
	err := s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		var base chainHead
		if err := tx.QueryRowContext(ctx, `SELECT base_seq, base_hash FROM audit_chain WHERE id = 1`).
			Scan(&base.seq, &base.hash); err != nil {
			return fmt.Errorf("read the audit chain's base: %w", err)
		}
		if base.seq != from {
			return rotor.Errorf(rotor.EConflict, "the audit chain's base moved from %d to %d: another prune ran", from, base.seq)
		}
		var rows []chainRow
		stretch := ` WHERE chain_seq > ` + strconv.FormatInt(from, 10) + ` AND chain_seq <= ` + strconv.FormatInt(to, 10)
		for _, kind := range chainKinds {
			t := sqliteChainTables[kind]
			err := sqliteScanChain(ctx, tx, `SELECT `+t.cols+`, chain_seq, chain_hash FROM `+kind+stretch, t.scan,
				func(r chainRow) error { rows = append(rows, r); return nil })
			if err != nil {
				return err
			}
		}
		hash, err := checkPrunable(from, to, base.hash, rows)
		if err != nil {
			return err
		}
		for _, kind := range chainKinds {
			res, err := tx.ExecContext(ctx, `DELETE FROM `+kind+stretch)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", kind, err)
			}
			counts[kind], _ = res.RowsAffected() // SQLite always reports it
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit_chain SET base_seq = ?, base_hash = ?, pruned_at = ? WHERE id = 1`,
			to, hash, fmtTime(time.Now())); err != nil {
			return fmt.Errorf("move the audit chain's base: %w", err)
		}
		if a != nil {
			return sqliteInsertAction(ctx, tx, head, a)
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return counts, nil
}
