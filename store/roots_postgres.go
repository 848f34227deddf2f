package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor"
)

// RecordBundle implements Store.RecordBundle in one round trip.
func (s *pgStore) RecordBundle(ctx context.Context, b *rotor.Bundle, at time.Time) error {
	batch := &pgx.Batch{}
	for _, r := range bundleRows(b) {
		batch.Queue(insertBundleRootSQL, r.bundle, r.root, r.subject, utc(r.notAfter), utc(at))
	}
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return s.unavailable(fmt.Errorf("record bundle %s: %w", b.Fingerprint, err))
	}
	return nil
}

// RootStatus implements Store.RootStatus. Both queries run in one read-only
// snapshot, so the identities and the counts describe the same moment.
func (s *pgStore) RootStatus(ctx context.Context, root string) (*RootStatus, error) {
	st := &RootStatus{Root: root}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			var until *time.Time
			err := tx.QueryRow(ctx, rootCertificatesSQL("now()"), root).
				Scan(&st.Served, &st.LiveCertificates, &st.WithoutRoot, &until)
			if err != nil {
				return err
			}
			if until != nil {
				st.WithoutRootUntil = until.UTC()
			}
			rows, err := tx.Query(ctx, rootIdentitiesSQL, root)
			if err != nil {
				return err
			}
			var ir IdentityRoot
			_, err = pgx.ForEachRow(rows, []any{&ir.Identity.Namespace, &ir.Identity.ServiceAccount, &ir.Serial,
				&ir.IssuedAt, &ir.BundleFingerprint, &ir.HoldsRoot}, func() error {
				ir.IssuedAt = ir.IssuedAt.UTC()
				st.Identities = append(st.Identities, ir)
				return nil
			})
			return err
		})
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("root status of %s: %w", root, err))
	}
	return st, nil
}
