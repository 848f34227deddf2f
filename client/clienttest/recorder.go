package clienttest

import (
	"context"
	"sync"

	"github.com/rotor-dev/rotor"
)

// recorder passes audit records to the real store and, once committed,
// keeps them in order so tests can ask what the CA decided without SQL.
type recorder struct {
	rotor.AuditLog

	mu       sync.Mutex
	issued   []*rotor.Issuance
	refusals []*rotor.Refusal
}

func (r *recorder) RecordIssuance(ctx context.Context, iss *rotor.Issuance) error {
	if err := r.AuditLog.RecordIssuance(ctx, iss); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.issued = append(r.issued, iss)
	return nil
}

func (r *recorder) RecordRefusal(ctx context.Context, ref *rotor.Refusal) error {
	if err := r.AuditLog.RecordRefusal(ctx, ref); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refusals = append(r.refusals, ref)
	return nil
}

func (r *recorder) issuances() []*rotor.Issuance {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*rotor.Issuance(nil), r.issued...)
}

func (r *recorder) refused() []*rotor.Refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*rotor.Refusal(nil), r.refusals...)
}
