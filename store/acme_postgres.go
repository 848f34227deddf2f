package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotor-dev/rotor"
)

func pgScanEAB(row pgx.Row) (rotor.EABKey, error) {
	var k rotor.EABKey
	var expires, bound, revoked *time.Time
	err := row.Scan(&k.KeyID, &k.HMAC, &k.Identity.Namespace, &k.Identity.ServiceAccount, &k.CreatedAt, &expires,
		&bound, &revoked, &k.AccountID)
	k.CreatedAt = k.CreatedAt.UTC()
	k.ExpiresAt, k.BoundAt, k.RevokedAt = orZero(expires), orZero(bound), orZero(revoked)
	return k, err
}

// pgUniqueViolation reports whether err is a unique_violation (23505).
func pgUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// CreateEABKey implements rotor.EABStore.
func (s *pgStore) CreateEABKey(ctx context.Context, k rotor.EABKey, a rotor.AdminAction) error {
	err := s.inChain(ctx, func(_ context.Context, _ pgx.Tx, b *pgx.Batch, head *chainHead) error {
		b.Queue(`INSERT INTO acme_eab_keys (kid, hmac_key, namespace, service_account, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, k.KeyID, k.HMAC, k.Identity.Namespace, k.Identity.ServiceAccount,
			utc(k.CreatedAt), orNull(k.ExpiresAt))
		pgQueueAction(b, head, eabAction(k, a))
		return nil
	})
	if pgUniqueViolation(err) {
		return rotor.Errorf(rotor.EInvalid, "EAB key %s exists already", k.KeyID)
	}
	if err != nil {
		return s.unavailable(fmt.Errorf("store EAB key %s: %w", k.KeyID, err))
	}
	return nil
}

// EABKey implements rotor.EABStore.
func (s *pgStore) EABKey(ctx context.Context, kid string) (rotor.EABKey, error) {
	k, err := pgScanEAB(s.pool.QueryRow(ctx, `SELECT `+eabColumns+` FROM acme_eab_keys WHERE kid = $1`, kid))
	return k, s.tokenErr(err, "EAB key "+kid)
}

// EABKeys implements rotor.EABStore.
func (s *pgStore) EABKeys(ctx context.Context) ([]rotor.EABKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eabColumns+` FROM acme_eab_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("list EAB keys: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rotor.EABKey, error) {
		k, err := pgScanEAB(r)
		k.HMAC = nil
		return k, err
	})
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("list EAB keys: %w", err))
	}
	return out, nil
}

// RevokeEABKey implements rotor.EABStore.
func (s *pgStore) RevokeEABKey(ctx context.Context, kid string, a rotor.AdminAction) (k rotor.EABKey, err error) {
	err = s.inChain(ctx, func(ctx context.Context, tx pgx.Tx, b *pgx.Batch, head *chainHead) error {
		k, err = pgScanEAB(tx.QueryRow(ctx, `SELECT `+eabColumns+` FROM acme_eab_keys WHERE kid = $1 FOR UPDATE`, kid))
		if err = s.tokenErr(err, "EAB key "+kid); err != nil {
			return err
		}
		if err := eabRevocable(k); err != nil {
			return err
		}
		k.RevokedAt, k.HMAC = utc(a.Time), nil
		b.Queue(`UPDATE acme_eab_keys SET revoked_at = $2, hmac_key = NULL WHERE kid = $1`, kid, k.RevokedAt)
		a.Action, a.Target = rotor.ActionEABRevoke, kid
		pgQueueAction(b, head, &a)
		return nil
	})
	if err != nil {
		return rotor.EABKey{}, s.unavailable(fmt.Errorf("revoke EAB key %s: %w", kid, err))
	}
	return k, nil
}

// BindACMEAccount implements rotor.ACMEAccountStore.
func (s *pgStore) BindACMEAccount(ctx context.Context, acct rotor.ACMEAccount, a rotor.AdminAction) error {
	err := s.inChain(ctx, func(ctx context.Context, tx pgx.Tx, b *pgx.Batch, head *chainHead) error {
		// The chain's lock orders binders; the row check spends the key once.
		tag, err := tx.Exec(ctx, `UPDATE acme_eab_keys SET hmac_key = NULL, bound_at = $2, account_id = $3
			WHERE kid = $1 AND hmac_key IS NOT NULL`, acct.EABKeyID, utc(acct.CreatedAt), acct.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return errEABSpent(acct.EABKeyID)
		}
		b.Queue(`INSERT INTO acme_accounts (`+accountColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			acct.ID, acct.KeyThumbprint, string(acct.Key), acct.Identity.Namespace, acct.Identity.ServiceAccount,
			acct.EABKeyID, acct.Status, utc(acct.CreatedAt))
		pgQueueAction(b, head, &a)
		return nil
	})
	if pgUniqueViolation(err) {
		return errAccountKeyTaken()
	}
	if err != nil {
		return s.unavailable(fmt.Errorf("bind ACME account %s: %w", acct.ID, err))
	}
	return nil
}

func pgScanAccount(row pgx.Row) (rotor.ACMEAccount, error) {
	var a rotor.ACMEAccount
	var key string
	err := row.Scan(&a.ID, &a.KeyThumbprint, &key, &a.Identity.Namespace, &a.Identity.ServiceAccount, &a.EABKeyID,
		&a.Status, &a.CreatedAt)
	a.Key, a.CreatedAt = []byte(key), a.CreatedAt.UTC()
	return a, err
}

// ACMEAccount implements rotor.ACMEAccountStore.
func (s *pgStore) ACMEAccount(ctx context.Context, id string) (rotor.ACMEAccount, error) {
	a, err := pgScanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM acme_accounts WHERE id = $1`, id))
	return a, s.tokenErr(err, "ACME account "+id)
}

// ACMEAccountByKey implements rotor.ACMEAccountStore.
func (s *pgStore) ACMEAccountByKey(ctx context.Context, thumbprint string) (rotor.ACMEAccount, error) {
	a, err := pgScanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM acme_accounts
		WHERE key_thumbprint = $1`, thumbprint))
	return a, s.tokenErr(err, "ACME account")
}

// UpdateACMEAccount implements rotor.ACMEAccountStore.
func (s *pgStore) UpdateACMEAccount(ctx context.Context, acct rotor.ACMEAccount, a rotor.AdminAction) error {
	err := s.inChain(ctx, func(_ context.Context, _ pgx.Tx, b *pgx.Batch, head *chainHead) error {
		b.Queue(`UPDATE acme_accounts SET jwk = $2, key_thumbprint = $3, status = $4 WHERE id = $1`,
			acct.ID, string(acct.Key), acct.KeyThumbprint, acct.Status)
		pgQueueAction(b, head, &a)
		return nil
	})
	if pgUniqueViolation(err) {
		return errAccountKeyTaken()
	}
	if err != nil {
		return s.unavailable(fmt.Errorf("update ACME account %s: %w", acct.ID, err))
	}
	return nil
}

// CreateACMEOrder implements rotor.ACMEOrderStore.
func (s *pgStore) CreateACMEOrder(ctx context.Context, o rotor.ACMEOrder) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO acme_orders (id, account_id, dns_names, status, created_at, expires_at,
		replaces) VALUES ($1, $2, $3, $4, $5, $6, $7)`, o.ID, o.AccountID, marshalNames(o.DNSNames), o.Status,
		utc(o.CreatedAt), utc(o.Expires), nullString(o.Replaces))
	if pgUniqueViolation(err) {
		return errReplaced(o.Replaces)
	}
	if err != nil {
		return s.unavailable(fmt.Errorf("store ACME order: %w", err))
	}
	return nil
}

// ACMEOrder implements rotor.ACMEOrderStore.
func (s *pgStore) ACMEOrder(ctx context.Context, id string) (rotor.ACMEOrder, error) {
	var o rotor.ACMEOrder
	var names string
	err := s.pool.QueryRow(ctx, `SELECT `+orderColumns+` FROM acme_orders WHERE id = $1`, id).Scan(&o.ID,
		&o.AccountID, &names, &o.Status, &o.CreatedAt, &o.Expires, &o.Serial, &o.Replaces)
	if err == nil {
		err = json.Unmarshal([]byte(names), &o.DNSNames)
	}
	o.CreatedAt, o.Expires = o.CreatedAt.UTC(), o.Expires.UTC()
	return o, s.tokenErr(err, "ACME order "+id)
}

// MoveACMEOrder implements rotor.ACMEOrderStore.
func (s *pgStore) MoveACMEOrder(ctx context.Context, id, from, to, serial string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE acme_orders SET status = $3, serial = COALESCE(NULLIF($4, ''), serial)
		WHERE id = $1 AND status = $2`, id, from, to, serial)
	return moved(tag.RowsAffected(), err, id, from)
}

// insertNonce implements acmeBackend.
func (s *pgStore) insertNonce(ctx context.Context, nonce string, expires time.Time) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO acme_nonces (nonce, expires_at) VALUES ($1, $2)`, nonce, utc(expires)); err != nil {
		return s.unavailable(fmt.Errorf("store nonce: %w", err))
	}
	return nil
}

// sweepNonces implements acmeBackend.
func (s *pgStore) sweepNonces(ctx context.Context, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM acme_nonces WHERE expires_at < $1`, utc(now)); err != nil {
		return s.unavailable(fmt.Errorf("sweep expired nonces: %w", err))
	}
	return nil
}

// UseNonce implements rotor.ACMEOrderStore.
func (s *pgStore) UseNonce(ctx context.Context, nonce string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM acme_nonces WHERE nonce = $1 AND expires_at > $2`, nonce, utc(now))
	return usedNonce(tag.RowsAffected(), err)
}
