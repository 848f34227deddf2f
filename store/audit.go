package store

import (
	"context"
	"encoding/json"

	"github.com/rotor-dev/rotor"
)

// record is one audit row waiting for group commit: exactly one of iss,
// ref and sum is set. Its digest is computed by the caller's goroutine, so
// the writer holding the chain lock only links.
type record struct {
	iss    *rotor.Issuance
	ref    *rotor.Refusal
	sum    *refusalSummary
	digest digest
}

// refusalSummary is a rotor.RefusalSummary with its reasons encoded as the
// JSON object both schemas store.
type refusalSummary struct {
	*rotor.RefusalSummary
	reasons []byte
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
	return a.batch.Submit(ctx, record{iss: &c, digest: issuanceDigest(&c)})
}

// RecordRefusal implements rotor.AuditLog.
func (a auditLog) RecordRefusal(ctx context.Context, r *rotor.Refusal) error {
	c := *r
	return a.batch.Submit(ctx, record{ref: &c, digest: refusalDigest(&c)})
}

// RecordRefusalSummary implements rotor.AuditLog.
func (a auditLog) RecordRefusalSummary(ctx context.Context, s *rotor.RefusalSummary) error {
	if s.Count <= 0 || len(s.Reasons) == 0 {
		return rotor.Errorf(rotor.EInternal, "refusal summary of %s counts nothing", s.Source)
	}
	c := *s
	reasons, err := json.Marshal(s.Reasons) // keys sorted: stable rows
	if err != nil {
		return rotor.WrapError(rotor.EInternal, err, "encode refusal summary")
	}
	return a.batch.Submit(ctx, record{sum: &refusalSummary{RefusalSummary: &c, reasons: reasons}, digest: summaryDigest(&c)})
}
