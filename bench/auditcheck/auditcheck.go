// Package auditcheck holds a benchmark to the audit promise after the
// run, with SQL against the CA's Postgres store: every certificate
// answered with 201 has exactly one issuance row, and no serial was
// answered twice.
package auditcheck

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Counts is what the check found.
type Counts struct {
	Created int `json:"created"` // 201s the clients got
	Rows    int `json:"rows"`    // issuance rows in the store
	// Missing are 201s without a row; Repeated are serials answered with
	// 201 more than once. The promise is zero of each.
	Missing  int `json:"missing"`
	Repeated int `json:"repeated"`
	// LostAcks are rows no client got a 201 for: the commit succeeded but
	// the answer did not arrive (the run ended under it). Safe: the audit
	// holds a certificate nobody received.
	LostAcks int `json:"lost_acks"`
}

// OK reports whether the promise held.
func (c Counts) OK() bool { return c.Missing == 0 && c.Repeated == 0 }

func (c Counts) String() string {
	return fmt.Sprintf("created=%d rows=%d missing=%d repeated=%d lost_acks=%d",
		c.Created, c.Rows, c.Missing, c.Repeated, c.LostAcks)
}

// Check compares serials (lowercase hex, as the issuances table keys
// them) with the rows of the store at storeURL (postgres://).
func Check(ctx context.Context, storeURL string, serials []string) (Counts, error) {
	conn, err := pgx.Connect(ctx, storeURL)
	if err != nil {
		return Counts{}, fmt.Errorf("auditcheck: connect: %w", err)
	}
	defer conn.Close(ctx)
	// Serial is the table's primary key: a serial has one row or none.
	rows, err := conn.Query(ctx, `SELECT serial FROM issuances`)
	if err != nil {
		return Counts{}, fmt.Errorf("auditcheck: read issuances: %w", err)
	}
	stored := map[string]bool{}
	var serial string
	_, err = pgx.ForEachRow(rows, []any{&serial}, func() error { stored[serial] = true; return nil })
	if err != nil {
		return Counts{}, fmt.Errorf("auditcheck: read issuances: %w", err)
	}
	c := Counts{Created: len(serials), Rows: len(stored)}
	seen := make(map[string]bool, len(serials))
	for _, s := range serials {
		if seen[s] {
			c.Repeated++
			continue
		}
		seen[s] = true
		if !stored[s] {
			c.Missing++
		}
	}
	c.LostAcks = c.Rows - (len(seen) - c.Missing)
	return c, nil
}
