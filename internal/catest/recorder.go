package catest

import (
	"context"
	"sync"

	"github.com/rotor-dev/rotor"
)

// recorder passes audit records to the real store and keeps the committed
// issuances in order, so tests can ask what the CA issued without SQL.
type recorder struct {
	rotor.AuditLog

	mu     sync.Mutex
	issued []*rotor.Issuance
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

func (r *recorder) issuances() []*rotor.Issuance {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*rotor.Issuance(nil), r.issued...)
}
