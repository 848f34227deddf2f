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
	if !rotor.IsLowerHex(iss.Serial, 1, rotor.MaxSerialHex) {
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
