package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor"
)

// Revocations implements rotor.RevocationStore.
func (s *sqliteStore) Revocations(ctx context.Context, issuerKeyID string, since time.Time) (*rotor.RevocationList, error) {
	rows, err := s.r.QueryContext(ctx, revocationsQuery(func(int) string { return "?" }), issuerKeyID, fmtTime(since))
	if err != nil {
		return nil, unavailable(fmt.Errorf("list revocations of issuer %s: %w", issuerKeyID, err))
	}
	defer rows.Close()
	list, err := scanRevocations(issuerKeyID, rows, func(r *rotor.Revocation) (seq int64, err error) {
		var at string
		var code int
		err = rows.Scan(&r.Serial, &at, &code, &seq)
		r.Reason = rotor.RevocationReason(code)
		return seq, errors.Join(err, parseTime(at, &r.Time))
	})
	if err != nil {
		return nil, unavailable(fmt.Errorf("list revocations of issuer %s: %w", issuerKeyID, err))
	}
	return list, nil
}

// RevocationHead implements rotor.RevocationStore.
func (s *sqliteStore) RevocationHead(ctx context.Context) (seq int64, err error) {
	if err = s.r.QueryRowContext(ctx, revocationHeadQuery).Scan(&seq); err != nil {
		return 0, unavailable(fmt.Errorf("read the newest revocation: %w", err))
	}
	return seq, nil
}
