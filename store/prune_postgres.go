package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor"
)

// pgEligible is pruneEligible with the cutoff as $1.
func pgEligible(kind string) string { return strings.ReplaceAll(pruneEligible[kind], ":before", "$1") }

// pruneRange implements pruneBackend.
func (s *pgStore) pruneRange(ctx context.Context, before time.Time) (base, end int64, err error) {
	st, err := pgChainState(ctx, s.pool)
	if err != nil {
		return 0, 0, s.unavailable(err)
	}
	end = st.head.seq
	for _, kind := range chainKinds {
		var first *int64
		err := s.pool.QueryRow(ctx, `SELECT min(chain_seq) FROM `+kind+` WHERE chain_seq > $2 AND NOT (`+
			pgEligible(kind)+`)`, utc(before), st.base.seq).Scan(&first)
		if err != nil {
			return 0, 0, s.unavailable(fmt.Errorf("find the rows %s keeps: %w", kind, err))
		}
		if first != nil {
			end = min(end, *first-1)
		}
	}
	return st.base.seq, end, nil
}

// pruneCount implements pruneBackend.
func (s *pgStore) pruneCount(ctx context.Context, from, to int64) (map[string]int64, error) {
	counts := map[string]int64{}
	for _, kind := range chainKinds {
		var n int64
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+kind+` WHERE chain_seq > $1 AND chain_seq <= $2`,
			from, to).Scan(&n)
		if err != nil {
			return nil, s.unavailable(fmt.Errorf("count %s to prune: %w", kind, err))
		}
		counts[kind] = n
	}
	return counts, nil
}

// pruneBatch implements pruneBackend.
func (s *pgStore) pruneBatch(ctx context.Context, from, to int64, a *rotor.AdminAction) (map[string]int64, error) {
	counts := map[string]int64{}
	err := s.inChain(ctx, func(ctx context.Context, tx pgx.Tx, b *pgx.Batch, head *chainHead) error {
		st, err := pgChainState(ctx, tx)
		if err != nil {
			return err
		}
		if st.base.seq != from {
			return rotor.Errorf(rotor.EConflict, "the audit chain's base moved from %d to %d: another prune ran", from, st.base.seq)
		}
		var rows []chainRow
		stretch := ` WHERE chain_seq > ` + strconv.FormatInt(from, 10) + ` AND chain_seq <= ` + strconv.FormatInt(to, 10)
		for _, kind := range chainKinds {
			t := pgChainTables[kind]
			err := pgScanChain(ctx, tx, `SELECT `+t.cols+`, chain_seq, chain_hash FROM `+kind+stretch, t.scan,
				func(r chainRow) error { rows = append(rows, r); return nil })
			if err != nil {
				return err
			}
		}
		hash, err := checkPrunable(from, to, st.base.hash, rows)
		if err != nil {
			return err
		}
		for _, kind := range chainKinds {
			tag, err := tx.Exec(ctx, `DELETE FROM `+kind+stretch)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", kind, err)
			}
			counts[kind] = tag.RowsAffected()
		}
		b.Queue(`UPDATE audit_chain SET base_seq = $1, base_hash = $2, pruned_at = $3 WHERE id = 1`, to, hash, utc(time.Now()))
		if a != nil {
			pgQueueAction(b, head, a)
		}
		return nil
	})
	if err != nil {
		return nil, s.unavailable(err)
	}
	return counts, nil
}
