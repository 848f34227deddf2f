package store

import (
	"context"

	"github.com/rotor-dev/rotor"
)

// record is one audit row waiting for group commit: exactly one field is set.
type record struct {
	iss *rotor.Issuance
	ref *rotor.Refusal
}

// auditLog implements rotor.AuditLog for both backends on top of a batcher
// whose commit function writes records.
type auditLog struct {
	batch *batcher[record]
}

// RecordIssuance implements rotor.AuditLog.
func (a auditLog) RecordIssuance(ctx context.Context, iss *rotor.Issuance) error {
	// A row the database would reject must not reach a batch, where it
	// would fail every other caller's commit with it.
	if !isSerial(iss.Serial) {
		return rotor.Errorf(rotor.EInternal, "issuance serial %q is not lowercase hex", iss.Serial)
	}
	c := *iss // the caller may reuse its struct once it stops waiting
	// NOT NULL columns: nil would fail the whole batch on PostgreSQL.
	if c.SANs == nil {
		c.SANs = []string{}
	}
	if c.Certificate == nil {
		c.Certificate = []byte{}
	}
	return a.batch.Submit(ctx, record{iss: &c})
}

// RecordRefusal implements rotor.AuditLog.
func (a auditLog) RecordRefusal(ctx context.Context, r *rotor.Refusal) error {
	c := *r
	return a.batch.Submit(ctx, record{ref: &c})
}

// isSerial reports whether s is a non-empty lowercase hex string, the form
// the schema requires.
func isSerial(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// split separates a batch by table, keeping submission order within each.
func split(recs []record) (iss []*rotor.Issuance, refs []*rotor.Refusal) {
	for _, r := range recs {
		if r.iss != nil {
			iss = append(iss, r.iss)
		} else {
			refs = append(refs, r.ref)
		}
	}
	return iss, refs
}
