package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rotor-dev/rotor"
)

const sqliteTokenColumns = pgTokenColumns

func sqliteScanToken(row interface{ Scan(...any) error }) (rotor.StaticToken, error) {
	var t rotor.StaticToken
	var created string
	var expires, revoked, used sql.NullString
	err := row.Scan(&t.Hash, &t.Identity.Namespace, &t.Identity.ServiceAccount, &created, &t.Admin, &t.Name,
		&expires, &revoked, &used)
	if err != nil {
		return t, err
	}
	return t, errors.Join(parseTime(created, &t.CreatedAt), parseNullTime(expires, &t.ExpiresAt),
		parseNullTime(revoked, &t.RevokedAt), parseNullTime(used, &t.LastUsedAt))
}

func parseNullTime(s sql.NullString, t *time.Time) error {
	if !s.Valid {
		return nil
	}
	return parseTime(s.String, t)
}

// fmtNullTime stores the zero time as NULL.
func fmtNullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return fmtTime(t)
}

func sqliteInsertAction(ctx context.Context, tx *sql.Tx, head *chainHead, a *rotor.AdminAction) error {
	seq, hash := head.link(actionDigest(a))
	_, err := tx.ExecContext(ctx, `INSERT INTO admin_action_log (time, actor, actor_kind, remote_addr, action,
		target, reason, detail, chain_seq, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, fmtTime(a.Time),
		a.Actor.Name, a.Actor.Kind, a.Actor.RemoteAddr, a.Action, a.Target, a.Reason, a.Detail, seq, hash)
	return err
}

func sqliteInsertRevocation(ctx context.Context, tx *sql.Tx, head *chainHead, r *rotor.Revocation) error {
	seq, hash := head.link(revocationDigest(r, r.Reason.String()))
	_, err := tx.ExecContext(ctx, `INSERT INTO revoked_certificates (serial, revoked_at, reason, reason_code,
		actor, comment, chain_seq, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.Serial, fmtTime(r.Time),
		r.Reason.String(), int(r.Reason), r.Actor, r.Comment, seq, hash)
	return err
}

// CreateToken implements rotor.TokenStore.
func (s *sqliteStore) CreateToken(ctx context.Context, t rotor.StaticToken, a rotor.AdminAction) error {
	if err := checkToken(t); err != nil {
		return err
	}
	err := s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO static_tokens (hash, namespace, service_account, created_at,
			admin, name, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, t.Hash, t.Identity.Namespace,
			t.Identity.ServiceAccount, fmtTime(t.CreatedAt), t.Admin, t.Name, fmtNullTime(t.ExpiresAt))
		if err != nil {
			return err
		}
		return sqliteInsertAction(ctx, tx, head, tokenAction(t, a))
	})
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) && sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return errDuplicateToken(t)
	}
	if err != nil {
		return unavailable(fmt.Errorf("store token %s: %w", t.Subject(), err))
	}
	return nil
}

// LookupToken implements rotor.TokenStore.
func (s *sqliteStore) LookupToken(ctx context.Context, hash []byte) (rotor.StaticToken, error) {
	t, err := sqliteScanToken(s.r.QueryRowContext(ctx, `SELECT `+sqliteTokenColumns+` FROM static_tokens
		WHERE hash = ?`, hash))
	return t, tokenErr(err, "token")
}

// TokenBySubject implements rotor.TokenStore.
func (s *sqliteStore) TokenBySubject(ctx context.Context, subject string) (rotor.StaticToken, error) {
	prefix, err := rotor.ParseTokenSubject(subject)
	if err != nil {
		return rotor.StaticToken{}, err
	}
	t, err := sqliteScanToken(s.r.QueryRowContext(ctx, `SELECT `+sqliteTokenColumns+` FROM static_tokens
		WHERE substr(hash, 1, 6) = ?`, prefix))
	return t, tokenErr(err, "token "+subject)
}

func tokenErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return notFound(what)
	}
	return unavailable(fmt.Errorf("look up %s: %w", what, err))
}

// Tokens implements rotor.TokenStore.
func (s *sqliteStore) Tokens(ctx context.Context) ([]rotor.StaticToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqliteTokenColumns+` FROM static_tokens ORDER BY created_at, hash`)
	if err != nil {
		return nil, unavailable(fmt.Errorf("list tokens: %w", err))
	}
	defer rows.Close()
	var out []rotor.StaticToken
	for rows.Next() {
		t, err := sqliteScanToken(rows)
		if err != nil {
			return nil, unavailable(fmt.Errorf("list tokens: %w", err))
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("list tokens: %w", err))
	}
	return out, nil
}

// RevokeToken implements rotor.TokenStore.
func (s *sqliteStore) RevokeToken(ctx context.Context, subject string, a rotor.AdminAction) (t rotor.StaticToken, err error) {
	prefix, err := rotor.ParseTokenSubject(subject)
	if err != nil {
		return t, err
	}
	err = s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		t, err = sqliteScanToken(tx.QueryRowContext(ctx, `SELECT `+sqliteTokenColumns+` FROM static_tokens
			WHERE substr(hash, 1, 6) = ?`, prefix))
		if err = tokenErr(err, "token "+subject); err != nil {
			return err
		}
		if !t.RevokedAt.IsZero() {
			return rotor.Errorf(rotor.EConflict, "token %s was revoked already, at %s", subject, t.RevokedAt.Format(time.RFC3339))
		}
		t.RevokedAt = utc(a.Time)
		if _, err := tx.ExecContext(ctx, `UPDATE static_tokens SET revoked_at = ? WHERE hash = ?`,
			fmtTime(t.RevokedAt), t.Hash); err != nil {
			return err
		}
		a.Action, a.Target = rotor.ActionTokenRevoke, subject
		return sqliteInsertAction(ctx, tx, head, &a)
	})
	if err != nil {
		return rotor.StaticToken{}, unavailable(fmt.Errorf("revoke token %s: %w", subject, err))
	}
	return t, nil
}

// TouchToken implements rotor.TokenStore.
func (s *sqliteStore) TouchToken(ctx context.Context, hash []byte, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE static_tokens SET last_used_at = ? WHERE hash = ?`, fmtTime(at), hash)
	if err != nil {
		return unavailable(fmt.Errorf("record token use: %w", err))
	}
	return nil
}

// DenyIdentity implements rotor.AdminStore.
func (s *sqliteStore) DenyIdentity(ctx context.Context, d rotor.Denial, revoke bool, a rotor.AdminAction) (revoked []string, err error) {
	err = s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM denied_identities WHERE namespace = ? AND
			service_account = ?`, d.Identity.Namespace, d.Identity.ServiceAccount).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return rotor.Errorf(rotor.EConflict, "identity %s is denied already", d.Identity)
		}
		if revoke {
			if revoked, err = sqliteStrings(ctx, tx, `SELECT serial FROM issuances i WHERE namespace = ? AND
				service_account = ? AND not_after > ? AND NOT EXISTS (SELECT 1 FROM revoked_certificates r
				WHERE r.serial = i.serial) ORDER BY chain_seq`, d.Identity.Namespace, d.Identity.ServiceAccount,
				fmtTime(d.Time)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO denied_identities (namespace, service_account, denied_at,
			actor, reason) VALUES (?, ?, ?, ?, ?)`, d.Identity.Namespace, d.Identity.ServiceAccount, fmtTime(d.Time),
			d.Actor, d.Reason); err != nil {
			return err
		}
		for _, r := range liveRevocations(d, revoked) {
			if err := sqliteInsertRevocation(ctx, tx, head, &r); err != nil {
				return err
			}
		}
		return sqliteInsertAction(ctx, tx, head, denyAction(d, revoked, a))
	})
	if err != nil {
		return nil, unavailable(fmt.Errorf("deny %s: %w", d.Identity, err))
	}
	return revoked, nil
}

func sqliteStrings(ctx context.Context, q sqliteQuerier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// AllowIdentity implements rotor.AdminStore.
func (s *sqliteStore) AllowIdentity(ctx context.Context, id rotor.Identity, a rotor.AdminAction) error {
	err := s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM denied_identities WHERE namespace = ? AND service_account = ?`,
			id.Namespace, id.ServiceAccount)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, notFound("denied identity "+id.String()))
		}
		a.Action, a.Target = rotor.ActionAllow, id.String()
		return sqliteInsertAction(ctx, tx, head, &a)
	})
	if err != nil {
		return unavailable(fmt.Errorf("allow %s: %w", id, err))
	}
	return nil
}

// RevokeCertificate implements rotor.AdminStore.
func (s *sqliteStore) RevokeCertificate(ctx context.Context, r rotor.Revocation, a rotor.AdminAction) error {
	r.Serial = normalSerial(r.Serial)
	err := s.inChain(ctx, func(ctx context.Context, tx *sql.Tx, head *chainHead) error {
		var issued, revoked bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM issuances WHERE serial = ?),
			EXISTS (SELECT 1 FROM revoked_certificates WHERE serial = ?)`, r.Serial, r.Serial).Scan(&issued, &revoked)
		switch {
		case err != nil:
			return err
		case !issued:
			return notFound("certificate " + r.Serial)
		case revoked:
			return errNotRevocable(r.Serial)
		}
		if err := sqliteInsertRevocation(ctx, tx, head, &r); err != nil {
			return err
		}
		return sqliteInsertAction(ctx, tx, head, revokeAction(r, a))
	})
	if err != nil {
		return unavailable(fmt.Errorf("revoke %s: %w", r.Serial, err))
	}
	return nil
}

// DeniedIdentities implements rotor.AdminStore.
func (s *sqliteStore) DeniedIdentities(ctx context.Context) ([]rotor.Denial, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT namespace, service_account, denied_at, actor, reason
		FROM denied_identities ORDER BY namespace, service_account`)
	if err != nil {
		return nil, unavailable(fmt.Errorf("list denied identities: %w", err))
	}
	defer rows.Close()
	var out []rotor.Denial
	for rows.Next() {
		var d rotor.Denial
		var at string
		err := rows.Scan(&d.Identity.Namespace, &d.Identity.ServiceAccount, &at, &d.Actor, &d.Reason)
		if err = errors.Join(err, parseTime(at, &d.Time)); err != nil {
			return nil, unavailable(fmt.Errorf("list denied identities: %w", err))
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("list denied identities: %w", err))
	}
	return out, nil
}

// CertificateStatus implements rotor.CertificateStore.
func (s *sqliteStore) CertificateStatus(ctx context.Context, serial string) (*rotor.CertificateStatus, error) {
	serial = normalSerial(serial)
	var sc sqliteIssuance
	var at, actor, comment sql.NullString
	var code sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT `+prefixed("i.", issuanceColumns)+`, r.revoked_at, r.reason_code,
		r.actor, r.comment FROM issuances i LEFT JOIN revoked_certificates r ON r.serial = i.serial
		WHERE i.serial = ?`, serial).Scan(append(sc.dest(), &at, &code, &actor, &comment)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("certificate " + serial)
	}
	if err == nil {
		err = sc.done()
	}
	st := &rotor.CertificateStatus{Issuance: &sc.Issuance}
	if err == nil && at.Valid {
		st.Revocation = &rotor.Revocation{Serial: serial, Reason: rotor.RevocationReason(code.Int64),
			Actor: actor.String, Comment: comment.String}
		err = parseTime(at.String, &st.Revocation.Time)
	}
	if err != nil {
		return nil, unavailable(fmt.Errorf("certificate status of %s: %w", serial, err))
	}
	return st, nil
}

// Issuances implements rotor.CertificateStore.
func (s *sqliteStore) Issuances(ctx context.Context, q rotor.IssuanceQuery) (*rotor.IssuancePage, error) {
	f, err := newIssuanceFilter(q, func(int) string { return "?" })
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+prefixed("i.", issuanceColumns)+`, i.chain_seq FROM issuances i`+
		f.where+` ORDER BY i.chain_seq DESC LIMIT `+strconv.Itoa(f.limit+1), f.args...)
	if err != nil {
		return nil, unavailable(fmt.Errorf("list issuances: %w", err))
	}
	defer rows.Close()
	var list []*rotor.Issuance
	var seqs []int64
	for rows.Next() {
		var sc sqliteIssuance
		var seq int64
		err := rows.Scan(append(sc.dest(), &seq)...)
		if err = errors.Join(err, sc.done()); err != nil {
			return nil, unavailable(fmt.Errorf("list issuances: %w", err))
		}
		list, seqs = append(list, &sc.Issuance), append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("list issuances: %w", err))
	}
	return f.page(list, seqs), nil
}
