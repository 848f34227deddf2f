package store

import (
	"context"

	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotor-dev/rotor"
)

const pgTokenColumns = `hash, namespace, service_account, created_at, admin, name, expires_at, revoked_at, last_used_at`

func pgScanToken(row pgx.Row) (rotor.StaticToken, error) {
	var t rotor.StaticToken
	var expires, revoked, used *time.Time
	err := row.Scan(&t.Hash, &t.Identity.Namespace, &t.Identity.ServiceAccount, &t.CreatedAt, &t.Admin, &t.Name,
		&expires, &revoked, &used)
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt, t.RevokedAt, t.LastUsedAt = orZero(expires), orZero(revoked), orZero(used)
	return t, err
}

func orZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// orNull stores the zero time as NULL.
func orNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := utc(t)
	return &u
}

func pgQueueAction(b *pgx.Batch, head *chainHead, a *rotor.AdminAction) {
	seq, hash := head.link(actionDigest(a))
	b.Queue(`INSERT INTO admin_action_log (time, actor, actor_kind, remote_addr, action, target, reason, detail,
		chain_seq, chain_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, utc(a.Time), a.Actor.Name,
		a.Actor.Kind, a.Actor.RemoteAddr, a.Action, a.Target, a.Reason, a.Detail, seq, hash)
}

func pgQueueRevocation(b *pgx.Batch, head *chainHead, r *rotor.Revocation) {
	seq, hash := head.link(revocationDigest(r, r.Reason.String()))
	b.Queue(`INSERT INTO revoked_certificates (serial, revoked_at, reason, reason_code, actor, comment,
		chain_seq, chain_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.Serial, utc(r.Time), r.Reason.String(),
		int(r.Reason), r.Actor, r.Comment, seq, hash)
}

// CreateToken implements rotor.TokenStore.
func (s *pgStore) CreateToken(ctx context.Context, t rotor.StaticToken, a rotor.AdminAction) error {
	if err := checkToken(t); err != nil {
		return err
	}
	err := s.inChain(ctx, func(_ context.Context, _ pgx.Tx, b *pgx.Batch, head *chainHead) error {
		b.Queue(`INSERT INTO static_tokens (hash, namespace, service_account, created_at, admin, name, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.Hash, t.Identity.Namespace, t.Identity.ServiceAccount,
			utc(t.CreatedAt), t.Admin, t.Name, orNull(t.ExpiresAt))
		pgQueueAction(b, head, tokenAction(t, a))
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return errDuplicateToken(t)
	}
	if err != nil {
		return s.unavailable(fmt.Errorf("store token %s: %w", t.Subject(), err))
	}
	return nil
}

// LookupToken implements rotor.TokenStore.
func (s *pgStore) LookupToken(ctx context.Context, hash []byte) (rotor.StaticToken, error) {
	t, err := pgScanToken(s.pool.QueryRow(ctx, `SELECT `+pgTokenColumns+` FROM static_tokens WHERE hash = $1`, hash))
	return t, s.tokenErr(err, "token")
}

// TokenBySubject implements rotor.TokenStore.
func (s *pgStore) TokenBySubject(ctx context.Context, subject string) (rotor.StaticToken, error) {
	prefix, err := rotor.ParseTokenSubject(subject)
	if err != nil {
		return rotor.StaticToken{}, err
	}
	t, err := pgScanToken(s.pool.QueryRow(ctx, `SELECT `+pgTokenColumns+` FROM static_tokens
		WHERE substring(hash from 1 for 6) = $1`, prefix))
	return t, s.tokenErr(err, "token "+subject)
}

func (s *pgStore) tokenErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return notFound(what)
	}
	return s.unavailable(fmt.Errorf("look up %s: %w", what, err))
}

// Tokens implements rotor.TokenStore.
func (s *pgStore) Tokens(ctx context.Context) ([]rotor.StaticToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pgTokenColumns+` FROM static_tokens ORDER BY created_at, hash`)
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("list tokens: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rotor.StaticToken, error) { return pgScanToken(r) })
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("list tokens: %w", err))
	}
	return out, nil
}

// RevokeToken implements rotor.TokenStore.
func (s *pgStore) RevokeToken(ctx context.Context, subject string, a rotor.AdminAction) (t rotor.StaticToken, err error) {
	prefix, err := rotor.ParseTokenSubject(subject)
	if err != nil {
		return t, err
	}
	err = s.inChain(ctx, func(ctx context.Context, tx pgx.Tx, b *pgx.Batch, head *chainHead) error {
		t, err = pgScanToken(tx.QueryRow(ctx, `SELECT `+pgTokenColumns+` FROM static_tokens
			WHERE substring(hash from 1 for 6) = $1 FOR UPDATE`, prefix))
		if err = s.tokenErr(err, "token "+subject); err != nil {
			return err
		}
		if !t.RevokedAt.IsZero() {
			return rotor.Errorf(rotor.EConflict, "token %s was revoked already, at %s", subject, t.RevokedAt.Format(time.RFC3339))
		}
		t.RevokedAt = utc(a.Time)
		b.Queue(`UPDATE static_tokens SET revoked_at = $2 WHERE hash = $1`, t.Hash, t.RevokedAt)
		a.Action, a.Target = rotor.ActionTokenRevoke, subject
		pgQueueAction(b, head, &a)
		return nil
	})
	if err != nil {
		return rotor.StaticToken{}, s.unavailable(fmt.Errorf("revoke token %s: %w", subject, err))
	}
	return t, nil
}

// TouchToken implements rotor.TokenStore.
func (s *pgStore) TouchToken(ctx context.Context, hash []byte, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE static_tokens SET last_used_at = $2 WHERE hash = $1`, hash, utc(at))
	if err != nil {
		return s.unavailable(fmt.Errorf("record token use: %w", err))
	}
	return nil
}

// DenyIdentity implements rotor.AdminStore.
func (s *pgStore) DenyIdentity(ctx context.Context, d rotor.Denial, revoke bool, a rotor.AdminAction) (revoked []string, err error) {
	err = s.inChain(ctx, func(ctx context.Context, tx pgx.Tx, b *pgx.Batch, head *chainHead) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM denied_identities WHERE namespace = $1 AND service_account = $2`,
			d.Identity.Namespace, d.Identity.ServiceAccount).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return rotor.Errorf(rotor.EConflict, "identity %s is denied already", d.Identity)
		}
		if revoke {
			rows, err := tx.Query(ctx, `SELECT serial FROM issuances i WHERE namespace = $1 AND service_account = $2
				AND not_after > $3 AND NOT EXISTS (SELECT 1 FROM revoked_certificates r WHERE r.serial = i.serial)
				ORDER BY chain_seq`, d.Identity.Namespace, d.Identity.ServiceAccount, utc(d.Time))
			if err != nil {
				return err
			}
			if revoked, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
		}
		b.Queue(`INSERT INTO denied_identities (namespace, service_account, denied_at, actor, reason)
			VALUES ($1, $2, $3, $4, $5)`, d.Identity.Namespace, d.Identity.ServiceAccount, utc(d.Time), d.Actor, d.Reason)
		for _, r := range liveRevocations(d, revoked) {
			pgQueueRevocation(b, head, &r)
		}
		pgQueueAction(b, head, denyAction(d, revoked, a))
		return nil
	})
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("deny %s: %w", d.Identity, err))
	}
	return revoked, nil
}

// AllowIdentity implements rotor.AdminStore.
func (s *pgStore) AllowIdentity(ctx context.Context, id rotor.Identity, a rotor.AdminAction) error {
	err := s.inChain(ctx, func(ctx context.Context, tx pgx.Tx, b *pgx.Batch, head *chainHead) error {
		tag, err := tx.Exec(ctx, `DELETE FROM denied_identities WHERE namespace = $1 AND service_account = $2`,
			id.Namespace, id.ServiceAccount)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound("denied identity " + id.String())
		}
		a.Action, a.Target = rotor.ActionAllow, id.String()
		pgQueueAction(b, head, &a)
		return nil
	})
	if err != nil {
		return s.unavailable(fmt.Errorf("allow %s: %w", id, err))
	}
	return nil
}

// RevokeCertificate implements rotor.AdminStore.
func (s *pgStore) RevokeCertificate(ctx context.Context, r rotor.Revocation, a rotor.AdminAction) error {
	r.Serial = normalSerial(r.Serial)
	err := s.inChain(ctx, func(ctx context.Context, tx pgx.Tx, b *pgx.Batch, head *chainHead) error {
		var issued, revoked bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM issuances WHERE serial = $1),
			EXISTS (SELECT 1 FROM revoked_certificates WHERE serial = $1)`, r.Serial).Scan(&issued, &revoked)
		switch {
		case err != nil:
			return err
		case !issued:
			return notFound("certificate " + r.Serial)
		case revoked:
			return errNotRevocable(r.Serial)
		}
		pgQueueRevocation(b, head, &r)
		pgQueueAction(b, head, revokeAction(r, a))
		return nil
	})
	if err != nil {
		return s.unavailable(fmt.Errorf("revoke %s: %w", r.Serial, err))
	}
	return nil
}

// DeniedIdentities implements rotor.AdminStore.
func (s *pgStore) DeniedIdentities(ctx context.Context) ([]rotor.Denial, error) {
	rows, err := s.pool.Query(ctx, `SELECT namespace, service_account, denied_at, actor, reason
		FROM denied_identities ORDER BY namespace, service_account`)
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("list denied identities: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (d rotor.Denial, err error) {
		err = r.Scan(&d.Identity.Namespace, &d.Identity.ServiceAccount, &d.Time, &d.Actor, &d.Reason)
		d.Time = d.Time.UTC()
		return d, err
	})
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("list denied identities: %w", err))
	}
	return out, nil
}

// CertificateStatus implements rotor.CertificateStore.
func (s *pgStore) CertificateStatus(ctx context.Context, serial string) (*rotor.CertificateStatus, error) {
	serial = normalSerial(serial)
	i := &rotor.Issuance{}
	var at *time.Time
	var code *int
	var actor, comment *string
	err := s.pool.QueryRow(ctx, `SELECT `+prefixed("i.", issuanceColumns)+`, r.revoked_at, r.reason_code, r.actor, r.comment
		FROM issuances i LEFT JOIN revoked_certificates r ON r.serial = i.serial WHERE i.serial = $1`, serial).
		Scan(append(pgIssuanceDest(i), &at, &code, &actor, &comment)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("certificate " + serial)
	}
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("certificate status of %s: %w", serial, err))
	}
	pgIssuanceDone(i)
	st := &rotor.CertificateStatus{Issuance: i}
	if at != nil {
		st.Revocation = &rotor.Revocation{Serial: serial, Time: at.UTC(), Reason: rotor.RevocationReason(*code),
			Actor: *actor, Comment: *comment}
	}
	return st, nil
}

// Issuances implements rotor.CertificateStore.
func (s *pgStore) Issuances(ctx context.Context, q rotor.IssuanceQuery) (*rotor.IssuancePage, error) {
	f, err := newIssuanceFilter(q, func(n int) string { return "$" + strconv.Itoa(n) })
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+prefixed("i.", issuanceColumns)+`, i.chain_seq FROM issuances i`+
		f.where+` ORDER BY i.chain_seq DESC LIMIT `+strconv.Itoa(f.limit+1), f.args...)
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("list issuances: %w", err))
	}
	var seqs []int64
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*rotor.Issuance, error) {
		i := &rotor.Issuance{}
		var seq int64
		err := r.Scan(append(pgIssuanceDest(i), &seq)...)
		pgIssuanceDone(i)
		seqs = append(seqs, seq)
		return i, err
	})
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("list issuances: %w", err))
	}
	return f.page(list, seqs), nil
}
