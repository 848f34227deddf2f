package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor"
)

// sqliteNow is the current time as SQLite's live_identities view writes
// it: the stored format, to the millisecond, so text order is time order.
const sqliteNow = `strftime('%Y-%m-%d %H:%M:%f', 'now')`

// RecordBundle implements Store.RecordBundle in one transaction on the writer
// connection, beside (not inside) the audit group commit.
func (s *sqliteStore) RecordBundle(ctx context.Context, b *rotor.Bundle, at time.Time) error {
	err := inTx(ctx, s.w, nil, func(tx *sql.Tx) error {
		for _, r := range bundleRows(b) {
			if _, err := tx.ExecContext(ctx, insertBundleRootSQL, r.bundle, r.root, r.subject,
				fmtTime(r.notAfter), fmtTime(at)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return unavailable(fmt.Errorf("record bundle %s: %w", b.Fingerprint, err))
	}
	return nil
}

// RootStatus implements Store.RootStatus. Both queries read one WAL snapshot.
func (s *sqliteStore) RootStatus(ctx context.Context, root string) (*RootStatus, error) {
	st := &RootStatus{Root: root}
	err := inTx(ctx, s.r, &sql.TxOptions{ReadOnly: true}, func(tx *sql.Tx) error {
		var until sql.NullString
		if err := tx.QueryRowContext(ctx, rootCertificatesSQL(sqliteNow), root).
			Scan(&st.Served, &st.LiveCertificates, &st.WithoutRoot, &until); err != nil {
			return err
		}
		if until.Valid {
			if err := parseTime(until.String, &st.WithoutRootUntil); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, rootIdentitiesSQL, root)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ir IdentityRoot
			var at string
			if err := rows.Scan(&ir.Identity.Namespace, &ir.Identity.ServiceAccount, &ir.Serial, &at,
				&ir.BundleFingerprint, &ir.HoldsRoot); err != nil {
				return err
			}
			if err := parseTime(at, &ir.IssuedAt); err != nil {
				return err
			}
			st.Identities = append(st.Identities, ir)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, unavailable(fmt.Errorf("root status of %s: %w", root, err))
	}
	return st, nil
}

// inTx runs f in a transaction on db and commits it.
func inTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}
