package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rotor-dev/rotor"
)

func sqliteScanEAB(row interface{ Scan(...any) error }) (rotor.EABKey, error) {
	var k rotor.EABKey
	var created string
	var expires, bound, revoked sql.NullString
	err := row.Scan(&k.KeyID, &k.HMAC, &k.Identity.Namespace, &k.Identity.ServiceAccount, &created, &expires,
		&bound, &revoked, &k.AccountID)
	if err != nil {
		return k, err
	}
	return k, errors.Join(parseTime(created, &k.CreatedAt), parseNullTime(expires, &k.ExpiresAt),
		parseNullTime(bound, &k.BoundAt), parseNullTime(revoked, &k.RevokedAt))
}

func sqliteConstraint(err error, code int) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == code
}

// CreateEABKey implements rotor.EABStore.
func (s *sqliteStore) CreateEABKey(ctx context.Context, k rotor.EABKey, a rotor.AdminAction) error {
	err := s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO acme_eab_keys (kid, hmac_key, namespace, service_account,
			created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`, k.KeyID, k.HMAC, k.Identity.Namespace,
			k.Identity.ServiceAccount, fmtTime(k.CreatedAt), fmtNullTime(k.ExpiresAt))
		if err != nil {
			return err
		}
		return sqliteInsertAction(ctx, tx, head, eabAction(k, a))
	})
	if sqliteConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return rotor.Errorf(rotor.EInvalid, "EAB key %s exists already", k.KeyID)
	}
	if err != nil {
		return unavailable(fmt.Errorf("store EAB key %s: %w", k.KeyID, err))
	}
	return nil
}

// EABKey implements rotor.EABStore.
func (s *sqliteStore) EABKey(ctx context.Context, kid string) (rotor.EABKey, error) {
	k, err := sqliteScanEAB(s.r.QueryRowContext(ctx, `SELECT `+eabColumns+` FROM acme_eab_keys WHERE kid = ?`, kid))
	return k, tokenErr(err, "EAB key "+kid)
}

// EABKeys implements rotor.EABStore.
func (s *sqliteStore) EABKeys(ctx context.Context) ([]rotor.EABKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+eabColumns+` FROM acme_eab_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, unavailable(fmt.Errorf("list EAB keys: %w", err))
	}
	defer rows.Close()
	var out []rotor.EABKey
	for rows.Next() {
		k, err := sqliteScanEAB(rows)
		if err != nil {
			return nil, unavailable(fmt.Errorf("list EAB keys: %w", err))
		}
		k.HMAC = nil
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("list EAB keys: %w", err))
	}
	return out, nil
}

// RevokeEABKey implements rotor.EABStore.
func (s *sqliteStore) RevokeEABKey(ctx context.Context, kid string, a rotor.AdminAction) (k rotor.EABKey, err error) {
	err = s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		k, err = sqliteScanEAB(tx.QueryRowContext(ctx, `SELECT `+eabColumns+` FROM acme_eab_keys WHERE kid = ?`, kid))
		if err = tokenErr(err, "EAB key "+kid); err != nil {
			return err
		}
		if err := eabRevocable(k); err != nil {
			return err
		}
		k.RevokedAt, k.HMAC = utc(a.Time), nil
		if _, err := tx.ExecContext(ctx, `UPDATE acme_eab_keys SET revoked_at = ?, hmac_key = NULL WHERE kid = ?`,
			fmtTime(k.RevokedAt), kid); err != nil {
			return err
		}
		a.Action, a.Target = rotor.ActionEABRevoke, kid
		return sqliteInsertAction(ctx, tx, head, &a)
	})
	if err != nil {
		return rotor.EABKey{}, unavailable(fmt.Errorf("revoke EAB key %s: %w", kid, err))
	}
	return k, nil
}

// BindACMEAccount implements rotor.ACMEAccountStore.
func (s *sqliteStore) BindACMEAccount(ctx context.Context, acct rotor.ACMEAccount, a rotor.AdminAction) error {
	err := s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		res, err := tx.ExecContext(ctx, `UPDATE acme_eab_keys SET hmac_key = NULL, bound_at = ?, account_id = ?
			WHERE kid = ? AND hmac_key IS NOT NULL`, fmtTime(acct.CreatedAt), acct.ID, acct.EABKeyID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(err, errEABSpent(acct.EABKeyID))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO acme_accounts (`+accountColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			acct.ID, acct.KeyThumbprint, string(acct.Key), acct.Identity.Namespace, acct.Identity.ServiceAccount,
			acct.EABKeyID, acct.Status, fmtTime(acct.CreatedAt)); err != nil {
			return err
		}
		return sqliteInsertAction(ctx, tx, head, &a)
	})
	if sqliteConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return errAccountKeyTaken()
	}
	if err != nil {
		return unavailable(fmt.Errorf("bind ACME account %s: %w", acct.ID, err))
	}
	return nil
}

func sqliteScanAccount(row *sql.Row) (rotor.ACMEAccount, error) {
	var a rotor.ACMEAccount
	var key, created string
	err := row.Scan(&a.ID, &a.KeyThumbprint, &key, &a.Identity.Namespace, &a.Identity.ServiceAccount, &a.EABKeyID,
		&a.Status, &created)
	a.Key = []byte(key)
	if err == nil {
		err = parseTime(created, &a.CreatedAt)
	}
	return a, err
}

// ACMEAccount implements rotor.ACMEAccountStore.
func (s *sqliteStore) ACMEAccount(ctx context.Context, id string) (rotor.ACMEAccount, error) {
	a, err := sqliteScanAccount(s.r.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM acme_accounts WHERE id = ?`, id))
	return a, tokenErr(err, "ACME account "+id)
}

// ACMEAccountByKey implements rotor.ACMEAccountStore.
func (s *sqliteStore) ACMEAccountByKey(ctx context.Context, thumbprint string) (rotor.ACMEAccount, error) {
	a, err := sqliteScanAccount(s.r.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM acme_accounts
		WHERE key_thumbprint = ?`, thumbprint))
	return a, tokenErr(err, "ACME account")
}

// UpdateACMEAccount implements rotor.ACMEAccountStore.
func (s *sqliteStore) UpdateACMEAccount(ctx context.Context, acct rotor.ACMEAccount, a rotor.AdminAction) error {
	err := s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		if _, err := tx.ExecContext(ctx, `UPDATE acme_accounts SET jwk = ?, key_thumbprint = ?, status = ? WHERE id = ?`,
			string(acct.Key), acct.KeyThumbprint, acct.Status, acct.ID); err != nil {
			return err
		}
		return sqliteInsertAction(ctx, tx, head, &a)
	})
	if sqliteConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return errAccountKeyTaken()
	}
	if err != nil {
		return unavailable(fmt.Errorf("update ACME account %s: %w", acct.ID, err))
	}
	return nil
}

// CreateACMEOrder implements rotor.ACMEOrderStore.
func (s *sqliteStore) CreateACMEOrder(ctx context.Context, o rotor.ACMEOrder) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO acme_orders (id, account_id, dns_names, status, created_at,
		expires_at, replaces) VALUES (?, ?, ?, ?, ?, ?, ?)`, o.ID, o.AccountID, marshalNames(o.DNSNames), o.Status,
		fmtTime(o.CreatedAt), fmtTime(o.Expires), nullString(o.Replaces))
	if sqliteConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return errReplaced(o.Replaces)
	}
	if err != nil {
		return unavailable(fmt.Errorf("store ACME order: %w", err))
	}
	return nil
}

// ACMEOrder implements rotor.ACMEOrderStore.
func (s *sqliteStore) ACMEOrder(ctx context.Context, id string) (rotor.ACMEOrder, error) {
	var o rotor.ACMEOrder
	var names, created, expires string
	err := s.r.QueryRowContext(ctx, `SELECT `+orderColumns+` FROM acme_orders WHERE id = ?`, id).Scan(&o.ID,
		&o.AccountID, &names, &o.Status, &created, &expires, &o.Serial, &o.Replaces)
	if err == nil {
		err = errors.Join(json.Unmarshal([]byte(names), &o.DNSNames), parseTime(created, &o.CreatedAt),
			parseTime(expires, &o.Expires))
	}
	return o, tokenErr(err, "ACME order "+id)
}

// MoveACMEOrder implements rotor.ACMEOrderStore.
func (s *sqliteStore) MoveACMEOrder(ctx context.Context, id, from, to, serial string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE acme_orders SET status = ?, serial = COALESCE(NULLIF(?, ''), serial)
		WHERE id = ? AND status = ?`, to, serial, id, from)
	n, err := affected(res, err)
	return moved(n, err, id, from)
}

// insertNonce implements acmeBackend.
func (s *sqliteStore) insertNonce(ctx context.Context, nonce string, expires time.Time) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO acme_nonces (nonce, expires_at) VALUES (?, ?)`, nonce, fmtTime(expires)); err != nil {
		return unavailable(fmt.Errorf("store nonce: %w", err))
	}
	return nil
}

// sweepNonces implements acmeBackend.
func (s *sqliteStore) sweepNonces(ctx context.Context, now time.Time) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM acme_nonces WHERE expires_at < ?`, fmtTime(now)); err != nil {
		return unavailable(fmt.Errorf("sweep expired nonces: %w", err))
	}
	return nil
}

// UseNonce implements rotor.ACMEOrderStore.
func (s *sqliteStore) UseNonce(ctx context.Context, nonce string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM acme_nonces WHERE nonce = ? AND expires_at > ?`, nonce, fmtTime(now))
	return usedNonce(affected(res, err))
}

// affected is how many rows a statement changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// moved turns MoveACMEOrder's update into its answer.
func moved(n int64, err error, id, from string) error {
	switch {
	case err != nil:
		return unavailable(fmt.Errorf("move ACME order %s: %w", id, err))
	case n != 1:
		return rotor.Errorf(rotor.EConflict, "ACME order %s is not %s", id, from)
	}
	return nil
}

// usedNonce turns UseNonce's delete into its answer.
func usedNonce(n int64, err error) error {
	switch {
	case err != nil:
		return unavailable(fmt.Errorf("use nonce: %w", err))
	case n != 1:
		return rotor.Errorf(rotor.ENotFound, "the nonce is unknown, used or expired")
	}
	return nil
}
