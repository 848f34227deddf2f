package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/rotor-dev/rotor"
)

// Revocations implements rotor.RevocationStore.
func (s *pgStore) Revocations(ctx context.Context, issuerKeyID string, since time.Time) (*rotor.RevocationList, error) {
	rows, err := s.pool.Query(ctx, revocationsQuery(func(n int) string { return "$" + strconv.Itoa(n) }),
		issuerKeyID, utc(since))
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("list revocations of issuer %s: %w", issuerKeyID, err))
	}
	defer rows.Close()
	list, err := scanRevocations(issuerKeyID, rows, func(r *rotor.Revocation) (seq int64, err error) {
		var code int
		err = rows.Scan(&r.Serial, &r.Time, &code, &seq)
		r.Time, r.Reason = r.Time.UTC(), rotor.RevocationReason(code)
		return seq, err
	})
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("list revocations of issuer %s: %w", issuerKeyID, err))
	}
	return list, nil
}

// RevocationHead implements rotor.RevocationStore.
func (s *pgStore) RevocationHead(ctx context.Context) (seq int64, err error) {
	if err = s.pool.QueryRow(ctx, revocationHeadQuery).Scan(&seq); err != nil {
		return 0, s.unavailable(fmt.Errorf("read the newest revocation: %w", err))
	}
	return seq, nil
}
