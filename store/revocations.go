package store

import (
	"context"
	"time"

	"github.com/rotor-dev/rotor"
)

// maxKeyIDHex bounds an issuer key ID: a subject key ID is 20 octets when
// a CA computes it as RFC 5280 suggests; 64 allows any up to 32 octets.
const maxKeyIDHex = 64

// Revocations implements rotor.RevocationStore.
func (s *Store) Revocations(ctx context.Context, issuerKeyID string, since time.Time) (*rotor.RevocationList, error) {
	if !rotor.IsLowerHex(issuerKeyID, 2, maxKeyIDHex) || len(issuerKeyID)%2 != 0 {
		return nil, rotor.Errorf(rotor.EInvalid, "issuer key ID %q is not 1 to %d octets in lowercase hex",
			issuerKeyID, maxKeyIDHex/2)
	}
	return timed(s.metrics, "revocations", func() (*rotor.RevocationList, error) {
		return s.b.Revocations(ctx, issuerKeyID, since)
	})
}

// RevocationHead implements rotor.RevocationStore.
func (s *Store) RevocationHead(ctx context.Context) (int64, error) {
	return timed(s.metrics, "revocation_head", func() (int64, error) { return s.b.RevocationHead(ctx) })
}

// revocationsQuery is the query of Revocations on both backends, with
// placeholder(1) the issuer key ID and placeholder(2) the time. It reads
// every row of revoked_certificates, which holds the revocations of every
// issuer, and joins each to its issuance by primary key. The CROSS JOIN
// keeps SQLite to that order (PostgreSQL plans it as any inner join):
// SQLite would otherwise walk issuances_not_after over every live
// certificate, five times the work with one revocation in five.
func revocationsQuery(placeholder func(int) string) string {
	return `SELECT r.serial, r.revoked_at, r.reason_code, coalesce(r.chain_seq, 0)
		FROM revoked_certificates r CROSS JOIN issuances i
		WHERE i.serial = r.serial AND i.issuer_key_id = ` + placeholder(1) + ` AND i.not_after > ` + placeholder(2) + `
		ORDER BY r.serial`
}

// revocationHeadQuery reads the top of revoked_certificates_chain_seq.
const revocationHeadQuery = `SELECT coalesce(max(chain_seq), 0) FROM revoked_certificates`

// scanRevocations reads the rows of revocationsQuery into a list: scan
// reads the current row into r and returns its chain place.
func scanRevocations(issuerKeyID string, rows interface {
	Next() bool
	Err() error
}, scan func(r *rotor.Revocation) (seq int64, err error)) (*rotor.RevocationList, error) {
	list := &rotor.RevocationList{IssuerKeyID: issuerKeyID}
	for rows.Next() {
		var r rotor.Revocation
		seq, err := scan(&r)
		if err != nil {
			return nil, err
		}
		list.Add(r, seq)
	}
	return list, rows.Err()
}
